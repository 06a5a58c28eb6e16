"""The differential test's APScheduler side: random cron, date and interval triggers across
zones, written by APScheduler itself to a real SQLAlchemy job store, and the next 20 fire
times APScheduler computes for each (its own `get_next_fire_time` chain).

    python differential.py SQLALCHEMY_URL MODULE_DIR EXPECTED.json [--jobs 300] [--seed 7]

EXPECTED.json holds the instant the fires are counted from, and per job its fires (RFC 3339
UTC) and which of them lie within a day of a UTC-offset change in the trigger's zone (where
cronmesh follows its own documented DST rules). Jobs the importer must refuse (a `week`
field, jitter) are listed with the reason they must be refused for.
"""

import argparse
import datetime
import json
import os
import random
import sys
import zoneinfo

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("module_dir")
ap.add_argument("expected")
ap.add_argument("--jobs", type=int, default=300)
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--after", default=None, help="count fires from this instant (default: now)")
a = ap.parse_args()
rng = random.Random(a.seed)

with open(os.path.join(a.module_dir, "appjobs.py"), "w") as f:
    f.write("def noop(*a, **k):\n    pass\n")
sys.path.insert(0, a.module_dir)

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # noqa: E402
from apscheduler.schedulers.background import BackgroundScheduler  # noqa: E402
from apscheduler.triggers.cron import CronTrigger  # noqa: E402
from apscheduler.triggers.date import DateTrigger  # noqa: E402
from apscheduler.triggers.interval import IntervalTrigger  # noqa: E402

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney",
         "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Auckland", "Europe/London", "America/Los_Angeles"]
UTC = datetime.timezone.utc
now = (datetime.datetime.fromisoformat(a.after) if a.after
       else datetime.datetime.now(UTC)).replace(microsecond=500_000)
# Interval jobs start in the past of the real clock (the importer refuses a future start).
real_now = datetime.datetime.now(UTC)


def pick(*options):
    return rng.choice(options)


def cron_trigger(zone):
    fields = dict(
        second=pick("0", "0", "*/15", "5,35", "10-20/5", "30/10"),
        minute=pick(str(rng.randrange(60)), "*/5", "0-30/10", "*", "15,45", "0-0/5", "7/20"),
        hour=pick(str(rng.randrange(24)), "9-17", "*/6", "*", "2", "1-3", "1-23/4"),
        day=pick("*", "*", str(rng.randrange(1, 29)), "1,15", "last", "1st mon", "last fri", "2nd wed",
                 "10-20", "5/10", "5th mon"),
        month=pick("*", "*", str(rng.randrange(1, 13)), "1-6", "*/3", "jan,jul", "jan-mar"),
        day_of_week=pick("*", "*", "mon-fri", "0", "sat,sun", "*/2", "2-4", "fri", "6", "1/2", "fri-sun"),
        year=pick("*", "*", "*", "2026-2031/2", "2027,2029"),
    )
    if fields["day"] in ("1st mon", "last fri", "2nd wed", "5th mon") and rng.random() < 0.8:
        fields["day_of_week"] = "*"
    if rng.random() < 0.2:
        fields["start_date"] = now + datetime.timedelta(days=rng.randrange(-30, 60))
    if rng.random() < 0.1:
        fields["end_date"] = now + datetime.timedelta(days=rng.randrange(200, 900))
    return CronTrigger(timezone=zone, **fields), fields


def near_dst(fire, zone):
    tz = zoneinfo.ZoneInfo(zone)
    before = (fire - datetime.timedelta(days=1)).astimezone(tz).utcoffset()
    after = (fire + datetime.timedelta(days=1)).astimezone(tz).utcoffset()
    return before != after


sched = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=a.url)}, timezone="UTC")
sched.start(paused=True)
expected = {"after": now.isoformat(), "jobs": {}, "refused": {}}
# Fixed jobs besides the random ones: daily times in the hour clocks skip or repeat, and the
# Auckland shape APScheduler's search gets wrong after a DST change.
FIXED = [
    ("fixed-ny", "America/New_York", dict(hour=2, minute=30)),
    ("fixed-berlin", "Europe/Berlin", dict(hour=2, minute=30)),
    ("fixed-sydney", "Australia/Sydney", dict(hour=2, minute=30)),
    ("fixed-auckland", "Pacific/Auckland", dict(second="*/15", minute="15,45", day="1,15", month="jan,jul",
                                                day_of_week="mon")),
]
for i in range(a.jobs + len(FIXED)):
    zone = rng.choice(ZONES)
    kind = rng.random()
    job_id = f"j{i:03d}"
    if i >= a.jobs:
        job_id, zone, fields = FIXED[i - a.jobs]
        trigger = CronTrigger(timezone=zone, **fields)
    elif kind < 0.04:
        trigger = CronTrigger(week="10", hour=3, timezone=zone)
        expected["refused"][job_id] = "week"
    elif kind < 0.07:
        trigger = CronTrigger(hour=4, minute=5, jitter=30, timezone=zone)
        expected["refused"][job_id] = "jitter"
    elif kind < 0.77:
        trigger, fields = cron_trigger(zone)
        if fields["day"] in ("1st mon", "last fri", "2nd wed", "5th mon") and fields["day_of_week"] != "*":
            expected["refused"][job_id] = "no exact cronmesh equivalent"
    elif kind < 0.87:
        run = now + datetime.timedelta(minutes=rng.randrange(1, 500000))
        trigger = DateTrigger(run_date=run.astimezone(zoneinfo.ZoneInfo(zone)))
    else:
        every = rng.choice([90, 300, 3600, 5400, 86400, 7 * 86400, 45])
        start = min(now, real_now) - datetime.timedelta(seconds=rng.randrange(1, 10_000_000))
        trigger = IntervalTrigger(seconds=every, start_date=start.replace(microsecond=0), timezone=zone)
    sched.add_job("appjobs:noop", trigger, id=job_id, misfire_grace_time=rng.choice([None, 1, 60]),
                  coalesce=rng.random() < 0.5, max_instances=rng.choice([1, 3]))
    if job_id in expected["refused"]:
        continue
    fires, flagged = [], []
    prev = None
    t = trigger.get_next_fire_time(None, now)
    while t is not None and len(fires) < 20:
        fires.append(t.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        flagged.append(near_dst(t, zone))
        prev = t
        t = trigger.get_next_fire_time(prev, prev + datetime.timedelta(microseconds=1))
    expected["jobs"][job_id] = {"fires": fires, "near_dst": flagged, "zone": zone}
sched.shutdown()
with open(a.expected, "w") as f:
    json.dump(expected, f, indent=1)
