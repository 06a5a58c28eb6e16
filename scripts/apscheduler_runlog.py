"""Writes the runs of an APScheduler 3 scheduler as JSON lines, for `cronmesh shadow-diff`.

Copy this file next to the application that runs the old scheduler and, once, after the
scheduler is created:

    import apscheduler_runlog
    apscheduler_runlog.attach(scheduler, "/var/log/myapp/apscheduler-runs.jsonl")

Every run that ends, successfully or with an exception, appends one line:

    {"job": "<job id>", "fire_time": "<the run's scheduled time, RFC 3339>", "outcome": "executed"}

(`outcome` is "error" when the job raised.) The scheduled time, not the moment the run
started, so a busy thread pool does not show up as a time difference. Runs APScheduler
skipped as missed (EVENT_JOB_MISSED) did not run and are not written. Needs only the
`apscheduler` package the application already has.
"""

import json
import threading

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED


def attach(scheduler, path):
    """Appends a line to `path` for every run of `scheduler` that ends; returns the listener."""
    lock = threading.Lock()

    def record(event):
        line = json.dumps({
            "job": event.job_id,
            "fire_time": event.scheduled_run_time.isoformat(),
            "outcome": "error" if event.exception else "executed",
        })
        with lock, open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    scheduler.add_listener(record, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return record
