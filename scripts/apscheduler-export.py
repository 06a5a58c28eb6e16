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

# What a job's state may be rebuilt from, exactly: the classes of APScheduler's triggers (each
# defined in one of these modules), and the date, time and zone types they hold. Nothing else
# is looked up, so a job store cannot make this script run anything.
TRIGGER_MODULES = {
    "apscheduler.triggers.cron",
    "apscheduler.triggers.cron.fields",
    "apscheduler.triggers.cron.expressions",
    "apscheduler.triggers.interval",
    "apscheduler.triggers.date",
    "apscheduler.triggers.combining",
}
EXACT = {
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("zoneinfo", "ZoneInfo"), ("zoneinfo._zoneinfo", "ZoneInfo"),
    ("pytz", "_p"), ("pytz", "_UTC"), ("pytz", "utc"), ("copyreg", "_reconstructor"),
    ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"),
}


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


def zone_getattr(obj, name):
    """`getattr` as a pickled ZoneInfo uses it (`ZoneInfo._unpickle`), and for nothing else."""
    import zoneinfo

    if obj is zoneinfo.ZoneInfo and name == "_unpickle":
        return zoneinfo.ZoneInfo._unpickle
    raise pickle.UnpicklingError(f"refusing getattr({obj!r}, {name!r})")


class StoreUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "builtins" and name == "getattr":
            return zone_getattr
        if (module, name) in EXACT:
            return super().find_class(module, name)
        if module in TRIGGER_MODULES and "." not in name:
            found = super().find_class(module, name)
            # Only a class the module itself defines, not a function it imported.
            if isinstance(found, type) and found.__module__ == module:
                return found
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


def field_text(field):
    """A cron field as text that keeps what APScheduler's own str() drops: `0-0/5` is the
    minute 0 only (every 5 minutes from 0 to 0), which str() writes as `0/5`."""
    parts = []
    for e in field.expressions:
        first, last, step = (getattr(e, "first", None), getattr(e, "last", None), getattr(e, "step", None))
        if type(e).__name__ in ("RangeExpression", "WeekdayRangeExpression", "MonthRangeExpression") \
                and first is not None:
            text = str(first)
            if last is not None and (last != first or step):
                text += f"-{last}"
            if step:
                text += f"/{step}"
            parts.append(text)
        else:
            parts.append(str(e))
    return ",".join(parts)


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
            "fields": {f.name: field_text(f) for f in state["fields"]},
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
                if not isinstance(state, dict):
                    raise ValueError(f"a {type(state).__name__}, not a job's state")
            except Exception as e:  # a row that cannot be read is reported, not fatal
                problems.append({"id": row.id, "problem": f"job_state could not be read: {e}"})
                continue
            func = state.get("func")
            jobs.append({
                "id": state.get("id", row.id),
                "name": state.get("name"),
                "func": func if isinstance(func, str) else plain(func),
                "executor": state.get("executor"),
                "args": plain(list(state.get("args", ()))),
                "kwargs": plain(dict(state.get("kwargs", {}))),
                "trigger": trigger_json(state.get("trigger")),
                "misfire_grace_time": state.get("misfire_grace_time"),
                "coalesce": state.get("coalesce"),
                "max_instances": state.get("max_instances"),
                "next_run_time": instant(state.get("next_run_time")) or instant(row.next_run_time),
            })
    # APScheduler's day_of_week counts 0 = Monday; the importer reads it so.
    json.dump({"format": "cronmesh-apscheduler-export/1", "table": a.table, "day_of_week": "0=mon",
               "jobs": jobs, "unreadable": problems}, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
