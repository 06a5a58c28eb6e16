//! `cronmesh import crontab` with real crontab files (the awkward parts: `%`, environment
//! lines, CRON_TZ, macros, the either-day rule, @reboot, a bad line, the system format), and
//! the imported tasks run by a real node as cron would run them.

use std::time::Duration;

use crate::support::node::{NodeProcess, node_db, runs_of, wait_for};
use crate::support::{cronmesh, stderr, stdout};

/// The worked example of docs/migrating.md.
const CRONTAB: &str = include_str!("../docs/migrating/team.cron");

fn import(dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "import",
        "crontab",
        "team.cron",
        "--owner",
        "ops",
        "--tz",
        "UTC",
    ];
    args.extend_from_slice(extra);
    let out = cronmesh(dir, &args, &[]);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    (out.status.code().unwrap_or(-1), stdout(&out))
}

fn task_names(dir: &std::path::Path) -> Vec<String> {
    let out = cronmesh(
        dir,
        &["tasks", "list", "--module", "crontab", "--json"],
        &[],
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut names: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crontab_imports_once_updates_in_place_and_runs_as_cron_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("team.cron"), CRONTAB).unwrap();
    let out = cronmesh(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A dry run says exactly what would happen and writes nothing.
    // Before anything exists the dry run does not even create the database.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("team.cron"), CRONTAB).unwrap();
    let (code, report) = import(fresh.path(), &["--dry-run"]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("would create crontab.letter"), "{report}");
    assert!(
        !fresh.path().join("cronmesh.db").exists(),
        "a dry run made a database"
    );
    // docs/migrating.md shows this very report.
    let guide = include_str!("../docs/migrating.md");
    let shown = guide
        .split("<!-- dry-run report: team.cron -->\n```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the guide shows the dry run's report");
    assert_eq!(
        report, shown,
        "docs/migrating.md no longer shows what the dry run says"
    );

    let (code, report) = import(dir.path(), &["--dry-run"]);
    assert_eq!(code, 1, "something is skipped: {report}");
    for line in [
        "would create crontab.backup (line 6)",
        "would create crontab.echo (line 7)",
        "would create crontab.echo_2 (line 8)",
        "would create crontab.letter (line 10)",
        "skipped line 11: @reboot",
        "skipped line 12: cron expression \"0 0 32 * *\": day-of-month 32",
        "4 created, 0 updated, 0 unchanged, 2 skipped (dry run: nothing written)",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
    assert!(
        task_names(dir.path()).is_empty(),
        "a dry run wrote something"
    );

    // The import, then the same file again: nothing new, nothing changed.
    let (code, report) = import(dir.path(), &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("4 created, 0 updated, 0 unchanged, 2 skipped"),
        "{report}"
    );
    let names = task_names(dir.path());
    assert_eq!(
        names,
        [
            "crontab.backup",
            "crontab.echo",
            "crontab.echo_2",
            "crontab.letter"
        ]
    );
    let (_, again) = import(dir.path(), &[]);
    assert!(
        again.contains("0 created, 0 updated, 4 unchanged, 2 skipped"),
        "{again}"
    );

    // What a task holds: the line through the crontab's SHELL, its environment, its zone
    // (CRON_TZ wins over --tz), the input after `%`, MAILTO as a note, cron's policies.
    let out = cronmesh(dir.path(), &["tasks", "show", "crontab.letter"], &[]);
    let letter: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(letter["handler"], "shell");
    assert_eq!(letter["handler_args"]["program"], "/bin/bash");
    assert_eq!(
        letter["handler_args"]["args"],
        serde_json::json!(["-c", "cat "])
    );
    assert_eq!(
        letter["handler_args"]["stdin"],
        "Dear team,\nthe build is green: 100% done.\n"
    );
    assert_eq!(letter["handler_args"]["env"]["GREETING"], "hello there");
    assert_eq!(letter["handler_args"]["env"]["PATH"], "/usr/bin:/bin");
    assert_eq!(letter["trigger"]["timezone"], "America/New_York");
    assert_eq!(letter["misfire"], "skip");
    assert_eq!(letter["overlap"], "allow");
    assert_eq!(letter["owner"], "ops");
    let description = letter["description"].as_str().unwrap();
    assert!(
        description.contains("/bin/bash -c as cron does")
            && description.contains("MAILTO ops@example.invalid"),
        "{description}"
    );
    // The either-day rule is cron's: the 1st of the month or any Monday.
    let out = cronmesh(
        dir.path(),
        &[
            "next",
            "0 12 1 * MON",
            "--tz",
            "America/New_York",
            "-n",
            "40",
        ],
        &[],
    );
    let fires = stdout(&out);
    assert!(
        fires.contains("2027-02-01") && fires.contains("2027-01-04"),
        "{fires}"
    );

    // A changed line updates its task in place.
    let changed = CRONTAB.replace("30 2 * * *", "45 3 * * *");
    std::fs::write(dir.path().join("team.cron"), changed).unwrap();
    let (_, report) = import(dir.path(), &[]);
    assert!(
        report.contains("updated crontab.backup (line 6): schedule"),
        "{report}"
    );
    assert!(
        report.contains("0 created, 1 updated, 3 unchanged"),
        "{report}"
    );
    assert_eq!(task_names(dir.path()).len(), 4);

    // Run by a real node: `%` became the input, `\%` a percent sign, the environment is there.
    let node = NodeProcess::start(dir.path(), &[]);
    for task in ["crontab.letter", "crontab.echo_2"] {
        let out = cronmesh(dir.path(), &["tasks", "run-now", task], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let db = node_db(dir.path()).await;
    for (task, expected) in [
        (
            "crontab.letter",
            "Dear team,\nthe build is green: 100% done.",
        ),
        ("crontab.echo_2", "hello there 20"),
    ] {
        let run = wait_for(&format!("a run of {task}"), Duration::from_secs(20), || {
            let db = db.clone();
            async move {
                runs_of(&db, task)
                    .await
                    .into_iter()
                    .find(|r| r.status.as_str() != "running")
            }
        })
        .await;
        assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
        let output = run.output.unwrap_or_default();
        assert!(output.contains(expected), "{task}: {output:?}");
        if task == "crontab.echo_2" {
            assert!(output.contains("/bin/bash"), "{output:?}");
        }
    }
    assert!(node.stop().success());
}

#[test]
fn a_system_crontab_runs_other_users_lines_through_runuser_and_bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crontab"),
        "17 * * * * nobody cd / && run-parts --report /etc/cron.hourly\n",
    )
    .unwrap();
    let out = cronmesh(dir.path(), &["migrate"], &[]);
    assert!(out.status.success());
    let out = cronmesh(
        dir.path(),
        &[
            "import", "crontab", "crontab", "--system", "--module", "etc",
        ],
        &[("USER", "root")],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = cronmesh(dir.path(), &["tasks", "show", "etc.run-parts"], &[]);
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        task["handler_args"]["args"],
        serde_json::json!([
            "-u",
            "nobody",
            "--",
            "/bin/sh",
            "-c",
            "cd / && run-parts --report /etc/cron.hourly"
        ])
    );
    assert_eq!(task["handler_args"]["program"], "runuser");
    // Bad input: a missing file, a bad zone, a bad module; exit 2, nothing written.
    for (args, says) in [
        (vec!["import", "crontab", "missing.cron"], "missing.cron"),
        (
            vec!["import", "crontab", "crontab", "--tz", "Mars/Olympus"],
            "Mars/Olympus",
        ),
        (
            vec!["import", "crontab", "crontab", "--module", "Bad Module"],
            "Bad Module",
        ),
        (
            vec!["import", "crontab", "crontab", "--module", "cronmesh"],
            "reserved",
        ),
    ] {
        let out = cronmesh(dir.path(), &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_apscheduler_exporter_reads_a_real_job_store_without_importing_the_jobs() {
    let python = crate::support::venv_program("bin/python");
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let url = format!("sqlite:///{}/jobs.sqlite", dir.path().display());
    let made = std::process::Command::new(&python)
        .arg(root.join("tests/apscheduler/make_store.py"))
        .arg(&url)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // The application's module is on the path and fails when imported.
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/apscheduler-export.py"))
        .arg(&url)
        .env("PYTHONPATH", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The hostile row is reported, not run.
    assert!(
        !dir.path().join("pwned").exists(),
        "the exporter ran a pickled command"
    );
    let unreadable = doc["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{doc}");
    assert_eq!(unreadable[0]["id"], "hostile");
    let job = |id: &str| {
        doc["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no job {id} in {doc}"))
    };
    let cleanup = job("cleanup");
    assert_eq!(cleanup["name"], "nightly cleanup");
    assert_eq!(cleanup["func"], "appjobs:cleanup");
    assert_eq!(cleanup["args"], serde_json::json!([1, "x"]));
    assert_eq!(
        cleanup["kwargs"]["acct"]["__unreadable__"],
        "appjobs.Account"
    );
    assert_eq!(cleanup["trigger"]["type"], "cron");
    // Written as APScheduler holds it: 0 = Monday.
    assert_eq!(cleanup["trigger"]["fields"]["day_of_week"], "0-4");
    assert_eq!(cleanup["trigger"]["fields"]["second"], "0");
    assert_eq!(cleanup["trigger"]["timezone"], "Asia/Shanghai");
    assert_eq!(cleanup["misfire_grace_time"], 30);
    assert_eq!(cleanup["coalesce"], false);
    assert_eq!(cleanup["max_instances"], 1);
    assert!(
        cleanup["next_run_time"]
            .as_str()
            .unwrap()
            .ends_with("09:30:00+08:00")
    );
    let report = job("report");
    assert_eq!(report["trigger"]["type"], "interval");
    assert_eq!(report["trigger"]["hours"], 1);
    assert_eq!(report["trigger"]["minutes"], 30);
    assert_eq!(report["trigger"]["jitter"], 5);
    assert_eq!(report["trigger"]["timezone"], "Europe/Berlin");
    assert_eq!(report["trigger"]["start_date"], "2026-01-01T00:15:00+01:00");
    let once = job("once");
    assert_eq!(once["trigger"]["run_date"], "2031-01-01T10:00:00+01:00");
    let month_end = job("month-end");
    assert_eq!(month_end["trigger"]["fields"]["day"], "last fri");
    assert!(
        month_end["trigger"]["end_date"]
            .as_str()
            .unwrap()
            .starts_with("2032-12-31")
    );
}

#[test]
fn names_asked_for_and_names_made_up_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c"),
        "0 1 * * * /opt/backup a\n# cronmesh: name=backup_2\n0 2 * * * /opt/other\n0 3 * * * /opt/backup b\n# cronmesh: name=backup_2\n0 4 * * * /opt/third\n",
    )
    .unwrap();
    let out = cronmesh(dir.path(), &["import", "crontab", "c", "--tz", "UTC"], &[]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}{}", stderr(&out));
    for line in [
        "created crontab.backup (line 1)",
        "created crontab.backup_2 (line 3)",
        "created crontab.backup_3 (line 4)",
        "skipped line 6: the name \"backup_2\" is asked for by an earlier line too",
        "3 created, 0 updated, 0 unchanged, 1 skipped",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}
