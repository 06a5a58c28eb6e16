"""Which side of a disagreement is right: whether an instant matches a job's trigger, read
field by field with APScheduler's own field classes (not its date-walking search).

    python oracle.py SQLALCHEMY_URL MODULE_DIR DISPUTES.json

DISPUTES.json: [{"id": JOB_ID, "fire": RFC3339}, ...]; prints the same list with "matches".
"""

import datetime
import json
import sys

url, module_dir, disputes_path = sys.argv[1:4]
sys.path.insert(0, module_dir)
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # noqa: E402
from apscheduler.triggers.cron import CronTrigger  # noqa: E402

store = SQLAlchemyJobStore(url=url)


def matches(trigger, t):
    if not isinstance(trigger, CronTrigger):
        return None
    if trigger.start_date and t < trigger.start_date:
        return False
    if trigger.end_date and t > trigger.end_date:
        return False
    local = t.astimezone(trigger.timezone)
    for field in trigger.fields:
        value = field.get_value(local)
        if field.get_next_value(local) != value:
            return False
    return True


out = []
for d in json.load(open(disputes_path)):
    job = store.lookup_job(d["id"])
    t = datetime.datetime.fromisoformat(d["fire"].replace("Z", "+00:00"))
    out.append({**d, "matches": matches(job.trigger, t)})
json.dump(out, sys.stdout)
