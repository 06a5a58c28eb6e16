"""The old scheduler of the hand-over test: a real APScheduler 3 running jobs from a SQLAlchemy
job store, its runs written by scripts/apscheduler_runlog.py, stopped at a given instant.

    python old_scheduler.py SQLALCHEMY_URL WORK_DIR RUNLOG ANCHOR_EPOCH_SECONDS

Writes WORK_DIR/ready once its jobs are in the store and it runs; stops at the instant (epoch
seconds) the test writes to WORK_DIR/stop_at, once it is there. The interval job counts from
ANCHOR.
"""

import datetime
import os
import sys
import time

url, work_dir, runlog, anchor_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "scripts"))
with open(os.path.join(work_dir, "oldjobs.py"), "w") as f:
    f.write("def tick(*a, **k):\n    pass\n")
sys.path.insert(0, work_dir)

import apscheduler_runlog  # noqa: E402
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # noqa: E402
from apscheduler.schedulers.background import BackgroundScheduler  # noqa: E402

utc = datetime.timezone.utc
anchor = datetime.datetime.fromtimestamp(anchor_at, utc)
s = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone="UTC")
apscheduler_runlog.attach(s, runlog)
# A generous grace: a loaded test machine must not make the old scheduler skip a run.
s.add_job("oldjobs:tick", "cron", id="every-2s", second="*/2", misfire_grace_time=30)
s.add_job("oldjobs:tick", "interval", id="every-3s", seconds=3, start_date=anchor,
          misfire_grace_time=30)
s.add_job("oldjobs:tick", "cron", id="Weekday 09:30", day_of_week="mon-fri", hour=9, minute=30,
          timezone="Asia/Shanghai", misfire_grace_time=30)
s.start()
open(os.path.join(work_dir, "ready"), "w").close()
stop_file = os.path.join(work_dir, "stop_at")
while not os.path.exists(stop_file) or not open(stop_file).read().strip():
    time.sleep(0.05)
stop_at = float(open(stop_file).read())
time.sleep(max(0.0, stop_at - time.time()))
s.shutdown(wait=True)
