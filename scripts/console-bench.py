#!/usr/bin/env python3
"""How fast the console's tasks page is with many tasks.

    scripts/console-bench.py [--tasks 100000] [--runs-per-task 10] [--window 60]
                             [--postgres postgres://postgres@127.0.0.1:5432/DB]
                             [--bin target/release/cronmesh]

Makes a database holding --tasks runtime tasks (50 modules, 20 owners, zones round the world)
with --runs-per-task finished runs each, starts a real node on it, then for --window seconds
asks for the tasks page in the shapes people use (first page, a page deep in the list, a
search, sorted by owner backwards, a module filtered by last status) one after another, and
prints per shape: requests, median, p95 and slowest time to the whole HTML page, measured by
the client, and the server's own "Page read in" figure.

SQLite by default (a file in a temporary directory); with --postgres, the database named in
the URL is emptied and used (it must exist; loopback only). Needs nothing but Python 3 and,
for Postgres, psql. Run it with nothing else running on the machine.
"""

import argparse
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Sydney"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cronmesh(binary, url, *args):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CRONMESH")}
    env["CRONMESH__DATABASE__URL"] = url
    subprocess.run([binary, *args], env=env, check=True, stdout=subprocess.DEVNULL)


def fill_sql(tasks, runs, now_ms):
    """Statements that clone the seed task into `tasks` tasks with `runs` runs each."""
    zones = " ".join(f"WHEN {i} THEN '{z}'" for i, z in enumerate(ZONES))
    return [
        f"""INSERT INTO scheduled_task (name, module, handler, handler_args, trigger_conf_id,
              trigger_json, enabled, owner, description, timeout_ms, misfire, misfire_grace_ms,
              overlap, recover, lock_ttl_ms, source, orphaned, schedule_overridden, next_run_at,
              last_run_at, last_status, version, created_at, updated_at, run_now_at)
           SELECT 'mod' || (g.i % 50) || '.task' || lpad(g.i::text, 6, '0'), 'mod' || (g.i % 50),
              s.handler, s.handler_args, NULL,
              '{{"type":"cron","expr":"' || (g.i % 60) || ' ' || (g.i % 24) || ' * * *","timezone":"' ||
                 (CASE g.i % {len(ZONES)} {zones} END) || '"}}',
              s.enabled, 'team' || (g.i % 20), 'nightly job number ' || g.i, s.timeout_ms, s.misfire,
              s.misfire_grace_ms, s.overlap, s.recover, s.lock_ttl_ms, s.source, s.orphaned,
              s.schedule_overridden, s.next_run_at, s.last_run_at,
              CASE WHEN g.i % 7 = 0 THEN 'failed' ELSE 'succeeded' END, s.version, s.created_at,
              s.updated_at, NULL
           FROM scheduled_task s, generate_series(1, {tasks}) AS g(i) WHERE s.name = 'seed.task'""",
        f"""INSERT INTO task_run (run_id, task_name, fire_ts_ms, attempt, node_id, status,
              started_at, finished_at, duration_ms, error, output)
           SELECT 'r' || t.id || '-' || g.k, t.name, {now_ms} - g.k * 86400000, 1, 'bench-node',
              CASE WHEN (t.id + g.k) % 7 = 0 THEN 'failed' ELSE 'succeeded' END,
              s.created_at, s.created_at, 12, NULL, NULL
           FROM scheduled_task t, generate_series(1, {runs}) AS g(k),
              (SELECT created_at FROM scheduled_task WHERE name = 'seed.task') s
           WHERE t.name LIKE 'mod%'""",
    ]


def fill_sqlite(path, tasks, runs, now_ms):
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TEMP TABLE series AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
        f"WHERE i < {max(tasks, runs)}) SELECT i FROM c"
    )
    for sql in fill_sql(tasks, runs, now_ms):
        # SQLite has neither generate_series nor lpad here: the same statements on a table.
        sql = re.sub(r"generate_series\(1, (\d+)\) AS g\((\w)\)",
                     lambda m: f"(SELECT i AS {m.group(2)} FROM series WHERE i <= {m.group(1)}) AS g", sql)
        sql = sql.replace("lpad(g.i::text, 6, '0')", "printf('%06d', g.i)")
        db.execute(sql)
    db.execute("UPDATE version_counter SET value = (SELECT MAX(version) FROM scheduled_task) WHERE name = 'task'")
    db.commit()
    db.execute("ANALYZE")
    db.close()


def fill_postgres(url, tasks, runs, now_ms):
    for sql in fill_sql(tasks, runs, now_ms) + ["ANALYZE"]:
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True)


def get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read().decode()
        assert resp.status == 200, resp.status
    took = (time.perf_counter() - start) * 1000
    server = re.search(r"Page read in (\d+) ms", body)
    return took, int(server.group(1)) if server else None, body


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--runs-per-task", type=int, default=10)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--postgres")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release/cronmesh"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cronmesh-console-bench-")
    if a.postgres:
        assert re.match(r"postgres(ql)?://[^/]*(127\.0\.0\.1|localhost)[:/]", a.postgres), "loopback Postgres only"
        subprocess.run(["psql", "-q", a.postgres, "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], check=True)
        url = a.postgres
    else:
        url = f"sqlite://{work}/bench.db"
    now_ms = int(time.time() * 1000)
    cronmesh(a.bin, url, "migrate")
    cronmesh(a.bin, url, "tasks", "add", "seed.task", "--cron", "0 3 * * *", "--handler", "noop")
    started = time.time()
    if a.postgres:
        fill_postgres(url, a.tasks, a.runs_per_task, now_ms)
    else:
        fill_sqlite(f"{work}/bench.db", a.tasks, a.runs_per_task, now_ms)
    print(f"database: {a.tasks} tasks, {a.tasks * a.runs_per_task} runs, made in {time.time() - started:.1f} s")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CRONMESH")}
    env.update({"CRONMESH__DATABASE__URL": url, "CRONMESH__HTTP__BIND": f"127.0.0.1:{port}"})
    log = open(f"{work}/node.log", "w")
    node = subprocess.Popen([a.bin, "run"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.time()
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                assert node.poll() is None, open(f"{work}/node.log").read()
                time.sleep(0.2)
        print(f"node up in {time.time() - started:.1f} s")
        deep = f"mod37.task{a.tasks * 9 // 10:06d}"
        shapes = {
            "first page": "/",
            "deep page": f"/?after={deep}",
            "search": "/?q=number+4242",
            "owner, backwards": "/?sort=owner&dir=desc",
            "module + status": "/?module=mod7&status=failed",
        }
        _, _, body = get(base + "/")
        assert body.count("<tr>") >= 50, "the first page is not full"
        times = {name: [] for name in shapes}
        server = {name: [] for name in shapes}
        end = time.time() + a.window
        while time.time() < end:
            for name, path in shapes.items():
                took, read, _ = get(base + path)
                times[name].append(took)
                if read is not None:
                    server[name].append(read)
        print(f"tasks page, {a.window} s window, {'Postgres' if a.postgres else 'SQLite'}, {a.tasks} tasks:")
        print(f"{'shape':<18} {'requests':>8} {'median':>9} {'p95':>9} {'slowest':>9} {'server median':>14}")
        for name in shapes:
            t = sorted(times[name])
            p95 = t[min(len(t) - 1, int(len(t) * 0.95))]
            print(f"{name:<18} {len(t):>8} {statistics.median(t):>7.1f}ms {p95:>7.1f}ms {t[-1]:>7.1f}ms "
                  f"{statistics.median(server[name]):>12.0f}ms")
    finally:
        node.terminate()
        node.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
