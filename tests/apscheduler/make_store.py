"""Makes a real APScheduler 3 SQLAlchemy job store for the import tests.

    python make_store.py SQLALCHEMY_URL MODULE_DIR

Writes MODULE_DIR/appjobs.py (the application's job functions and a class of its own), adds
cron, interval and date jobs through APScheduler itself, then replaces appjobs.py with a
module that fails when imported: an exporter that imported the jobs' modules would fail.
"""

import datetime
import os
import sys

url, module_dir = sys.argv[1], sys.argv[2]
path = os.path.join(module_dir, "appjobs.py")
with open(path, "w") as f:
    f.write("class Account:\n    def __init__(self, n):\n        self.n = n\n\n"
            "def cleanup(*a, **k):\n    pass\n\ndef report(*a, **k):\n    pass\n")
sys.path.insert(0, module_dir)

import appjobs  # noqa: E402
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # noqa: E402
from apscheduler.schedulers.background import BackgroundScheduler  # noqa: E402

s = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone="UTC")
s.start(paused=True)
s.add_job("appjobs:cleanup", "cron", id="cleanup", name="nightly cleanup", day_of_week="mon-fri",
          hour=9, minute=30, timezone="Asia/Shanghai", args=[1, "x"], kwargs={"acct": appjobs.Account(3)},
          misfire_grace_time=30, coalesce=False, max_instances=1)
s.add_job("appjobs:report", "interval", id="report", minutes=90,
          start_date=datetime.datetime(2026, 1, 1, 0, 15), timezone="Europe/Berlin", jitter=5)
s.add_job("appjobs:report", "date", id="once", run_date=datetime.datetime(2031, 1, 1, 10, 0),
          timezone="Europe/Berlin")
s.add_job("appjobs:cleanup", "cron", id="month-end", day="last fri", hour=18,
          end_date=datetime.datetime(2032, 12, 31), timezone="America/New_York")
s.shutdown()

with open(path, "w") as f:
    f.write("raise SystemExit('the exporter imported the application module')\n")

# A row whose pickle would run a command when loaded naively; the exporter must not.
import pickle  # noqa: E402

import sqlalchemy  # noqa: E402


class Hostile:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(module_dir, "pwned"),))


engine = sqlalchemy.create_engine(url)
with engine.begin() as conn:
    conn.execute(
        sqlalchemy.text("INSERT INTO apscheduler_jobs (id, next_run_time, job_state) VALUES ('hostile', NULL, :s)"),
        {"s": pickle.dumps(Hostile())},
    )
