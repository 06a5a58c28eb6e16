#!/usr/bin/env python3
"""Writes an APScheduler 3 job store as one JSON document, for `cronmesh import apscheduler`.

    scripts/apscheduler-export.py SQLALCHEMY_URL [--table apscheduler_jobs] > jobs.json

Reads the table an APScheduler 3 `SQLAlchemyJobStore` keeps (`id`, `next_run_time`, and the
pickled `job_state`) and needs only Python 3, `apscheduler` 3 and `sqlalchemy` (which the old
system already has). It never imports the jobs' own modules: the job's function is stored as
a text reference (`package.module:function`), and an argument that is an object of the
application's own classes is written as {"__unreadable__": "module.Class"} rather than
loaded. Every job is written with its id, name, function reference, args and kwargs, trigger
with every field, misfire_grace_time, coalesce, max_instances and next_run_time.
"""

import argparse
import datetime
import json
import pickle
import sys

# Modules whose classes a job's state may be rebuilt from: APScheduler's own, and the time
# zone and date types its triggers hold. Anything else stays unread.
SAFE_MODULES = ("apscheduler.", "datetime", "zoneinfo", "pytz", "dateutil", "tzlocal", "collections",
                "decimal", "uuid", "copyreg", "_codecs")
SAFE_BUILTINS = {"set", "frozenset", "list", "dict", "tuple", "int", "float", "str", "bytes", "bool",
                 "complex", "slice", "range", "object", "bytearray"}


class Unreadable:
    """Stands for an object of a class the exporter does not load (its subclasses, made per
    class name, stand for the classes themselves)."""

    origin = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    @property
    def name(self):
        return self.origin


def placeholder(qualified):
    """A class standing for `qualified`, which is never imported."""
    return type("Unreadable", (Unreadable,), {"origin": qualified})


def safe_getattr(obj, name):
    """`getattr` as pickles of time zones use it (`ZoneInfo._unpickle`), without dunders."""
    if name.startswith("__"):
        raise pickle.UnpicklingError(f"refusing attribute {name!r}")
    return getattr(obj, name)


class StoreUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "builtins" and name == "getattr":
            return safe_getattr
        if module == "builtins" and name in SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith(SAFE_MODULES) or module in ("datetime", "zoneinfo", "pytz"):
            return super().find_class(module, name)
        return placeholder(f"{module}.{name}")


def zone_name(tz):
    if tz is None:
        return None
    for attr in ("key", "zone"):
        value = getattr(tz, attr, None)
        if isinstance(value, str):
            return value
    if tz == datetime.timezone.utc:
        return "UTC"
    return str(tz)


def instant(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat()
    return str(value)


def plain(value):
    """A job argument as JSON."""
    if isinstance(value, Unreadable):
        return {"__unreadable__": value.name}
    if isinstance(value, type) and issubclass(value, Unreadable):
        return {"__unreadable__": value.origin}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return {"__unreadable__": type(value).__module__ + "." + type(value).__name__}


def trigger_json(trigger):
    if isinstance(trigger, Unreadable):
        return {"type": "unreadable", "class": trigger.name}
    if isinstance(trigger, type) and issubclass(trigger, Unreadable):
        return {"type": "unreadable", "class": trigger.origin}
    kind = type(trigger).__module__.rsplit(".", 1)[-1]
    state = trigger.__getstate__() if hasattr(trigger, "__getstate__") else {}
    if kind == "cron":
        return {
            "type": "cron",
            "fields": {f.name: str(f) for f in state["fields"]},
            "defaults": [f.name for f in state["fields"] if getattr(f, "is_default", False)],
            "start_date": instant(state.get("start_date")),
            "end_date": instant(state.get("end_date")),
            "timezone": zone_name(state.get("timezone")),
            "jitter": state.get("jitter"),
        }
    if kind == "date":
        run_date = state.get("run_date")
        return {"type": "date", "run_date": instant(run_date),
                "timezone": zone_name(getattr(run_date, "tzinfo", None))}
    if kind == "interval":
        total = state["interval"].total_seconds()
        rest = int(total)
        parts = {}
        for unit, size in (("weeks", 604800), ("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1)):
            parts[unit], rest = divmod(rest, size)
        return {
            "type": "interval",
            **parts,
            "interval_seconds": total,
            "start_date": instant(state.get("start_date")),
            "end_date": instant(state.get("end_date")),
            "timezone": zone_name(state.get("timezone")),
            "jitter": state.get("jitter"),
        }
    return {"type": kind, "class": type(trigger).__module__ + "." + type(trigger).__name__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="the job store's SQLAlchemy URL, e.g. sqlite:////srv/app/jobs.sqlite")
    ap.add_argument("--table", default="apscheduler_jobs")
    a = ap.parse_args()
    import sqlalchemy

    engine = sqlalchemy.create_engine(a.url)
    table = sqlalchemy.Table(a.table, sqlalchemy.MetaData(), autoload_with=engine)
    jobs, problems = [], []
    with engine.connect() as conn:
        for row in conn.execute(sqlalchemy.select(table.c.id, table.c.next_run_time, table.c.job_state)):
            try:
                state = StoreUnpickler(__import__("io").BytesIO(row.job_state)).load()
            except Exception as e:  # a row that cannot be read is reported, not fatal
                problems.append({"id": row.id, "problem": f"job_state could not be read: {e}"})
                continue
            func = state.get("func")
            jobs.append({
                "id": state.get("id", row.id),
                "name": state.get("name"),
                "func": func if isinstance(func, str) else plain(func),
                "args": plain(list(state.get("args", ()))),
                "kwargs": plain(dict(state.get("kwargs", {}))),
                "trigger": trigger_json(state.get("trigger")),
                "misfire_grace_time": state.get("misfire_grace_time"),
                "coalesce": state.get("coalesce"),
                "max_instances": state.get("max_instances"),
                "next_run_time": instant(state.get("next_run_time")) or instant(row.next_run_time),
            })
    json.dump({"format": "cronmesh-apscheduler-export/1", "table": a.table, "jobs": jobs,
               "unreadable": problems}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
