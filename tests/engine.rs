//! The single-node engine through the real binary: `cronmesh run` on SQLite, steered with
//! the CLI while it runs.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use entity::task_run::RunStatus;
use nix::sys::signal::Signal;

use crate::support::node::{NodeProcess, node_db, runs_of, wait_for};
use crate::support::{cronmesh, fire_events, stderr, stdout};

fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = cronmesh(dir, args, &[]);
    assert!(
        out.status.success(),
        "cronmesh {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn date_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs);
    format!(
        r#"{{"type":"date","run_at":"{}"}}"#,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Adds a `shell` task with `args` that fires once in a few seconds, and waits for its run to
/// end with `status`.
async fn shell_task_once(
    dir: &Path,
    name: &str,
    args: &str,
    status: RunStatus,
) -> entity::task_run::Model {
    let trigger = date_in(4);
    cli_ok(
        dir,
        &[
            "tasks",
            "add",
            name,
            "--trigger-json",
            &trigger,
            "--handler",
            "shell",
            "--args",
            args,
        ],
    );
    let db = node_db(dir).await;
    wait_for("the run to end", Duration::from_secs(15), || {
        let db = db.clone();
        async move {
            runs_of(&db, name)
                .await
                .into_iter()
                .find(|r| r.status == status)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_second_tasks_fire_on_their_times_once_each() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["tick.a", "tick.b"] {
        cli_ok(
            dir.path(),
            &[
                "tasks",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--handler",
                "noop",
            ],
        );
    }
    let node = NodeProcess::start(dir.path(), &[("CRONMESH__LOG__FORMAT", "json")]);
    let db = node_db(dir.path()).await;
    wait_for("6 runs of each task", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            for t in ["tick.a", "tick.b"] {
                let ok = runs_of(&db, t)
                    .await
                    .iter()
                    .filter(|r| r.status == RunStatus::Succeeded)
                    .count();
                if ok < 6 {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;

    // Mailbox and scheduler metrics while it runs.
    let metrics = reqwest::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "cronmesh_fires_total ",
        "cronmesh_runs_total{status=\"succeeded\"}",
        "cronmesh_actor_mailbox_depth{actor=\"SchedulerActor\"}",
        "cronmesh_actor_messages_handled_total{actor=\"ExecutorActor\",message=\"Fire\"}",
        "cronmesh_actor_handling_seconds_bucket{actor=\"PersistenceActor\",message=\"ClaimRun\"",
        "cronmesh_fire_lateness_seconds_count",
        "cronmesh_persistence_buffered 0",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
    let inspect = cronmesh(dir.path(), &["inspect", "--url", &node.url], &[]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    for actor in [
        "SchedulerActor",
        "ExecutorActor",
        "LockActor",
        "PersistenceActor",
    ] {
        assert!(stdout(&inspect).contains(actor), "{}", stdout(&inspect));
    }

    let log_path_node = node;
    assert!(log_path_node.stop_keeping_log().success());
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    let mut started: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for v in fire_events(&log) {
        if v["fields"]["message"] == "run started" {
            let key = (
                v["fields"]["task"].as_str().unwrap_or("").to_owned(),
                v["fields"]["fire_time"].as_str().unwrap_or("").to_owned(),
            );
            *started.entry(key).or_default() += 1;
        }
    }
    assert!(
        started.values().all(|n| *n == 1),
        "a fire started twice: {started:?}"
    );
    for t in ["tick.a", "tick.b"] {
        let runs = runs_of(&db, t).await;
        assert_eq!(
            runs.len(),
            started.keys().filter(|(task, _)| task == t).count(),
            "every row's handler started once"
        );
        assert!(runs.len() >= 6);
        for pair in runs.windows(2) {
            assert_eq!(
                pair[1].fire_ts_ms - pair[0].fire_ts_ms,
                1000,
                "{t}: one run per second, no gap, no repeat"
            );
        }
        for r in &runs {
            assert_eq!(r.fire_ts_ms % 1000, 0);
            assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
            let late = r.started_at.timestamp_millis() - r.fire_ts_ms;
            assert!(
                (0..1000).contains(&late),
                "{t} started {late} ms after its fire time"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_task_over_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]);
    let script = "sleep 30 & echo $! > child.pid; wait";
    let args =
        serde_json::json!({"program": "sh", "args": ["-c", script], "cwd": dir.path()}).to_string();
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "shell.slow",
            "--trigger-json",
            &date_in(4),
            "--handler",
            "shell",
            "--args",
            &args,
            "--timeout",
            "1",
        ],
    );
    let db = node_db(dir.path()).await;
    let run = wait_for("the run to time out", Duration::from_secs(15), || {
        let db = db.clone();
        async move {
            runs_of(&db, "shell.slow")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::TimedOut)
        }
    })
    .await;
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("timed out after 1 s"),
        "{run:?}"
    );
    let child: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for(
        "the grandchild to be gone",
        Duration::from_secs(5),
        || async move {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), None)
                .is_err()
                .then_some(())
        },
    )
    .await;
    assert!(node.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_task_never_sees_the_nodes_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    // NodeProcess sets several CRONMESH__ settings; this one carries a password.
    let secret = "redis://:n0de-s3cret@127.0.0.1:1/0";
    let node = NodeProcess::start(dir.path(), &[("CRONMESH__REDIS__URL", secret)]);
    let args = serde_json::json!({"program": "env", "env": {"GIVEN": "yes"}}).to_string();
    let run = shell_task_once(dir.path(), "shell.secrets", &args, RunStatus::Succeeded).await;
    let output = run.output.unwrap_or_default();
    assert!(output.contains("GIVEN=yes"), "{output}");
    assert!(output.contains("CRONMESH_TASK=shell.secrets"), "{output}");
    assert!(!output.contains("CRONMESH__"), "{output}");
    assert!(!output.contains("n0de-s3cret"), "{output}");
    assert!(node.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_setting_listed_in_shell_pass_env_reaches_shell_tasks_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(
        dir.path(),
        &[
            ("CRONMESH__REDIS__URL", "redis://:n0de-s3cret@127.0.0.1:1/0"),
            // Read by the config crate as the same setting, and a near miss: neither passes.
            ("cronmesh__demo__enabled", "false"),
            ("CRONMESH_REDIS__URL", "redis://:n0de-s3cret@127.0.0.1:1/0"),
            (
                "CRONMESH__HANDLERS__SHELL_PASS_ENV",
                "CRONMESH__NODE__HEARTBEAT_SECS, CRONMESH__DEMO__ENABLED",
            ),
        ],
    );
    let args = serde_json::json!({"program": "env"}).to_string();
    let run = shell_task_once(dir.path(), "shell.passed", &args, RunStatus::Succeeded).await;
    let output = run.output.unwrap_or_default();
    assert!(
        output.contains("CRONMESH__NODE__HEARTBEAT_SECS=1"),
        "{output}"
    );
    assert!(output.contains("CRONMESH__DEMO__ENABLED=false"), "{output}");
    assert!(!output.contains("CRONMESH__REDIS__URL"), "{output}");
    assert!(!output.contains("cronmesh__demo"), "{output}");
    assert!(!output.contains("n0de-s3cret"), "{output}");
    assert!(node.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_task_gets_its_environment_and_keeps_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]);
    let script = "env | grep ^CRONMESH_ | sort; echo oops >&2; exit 3";
    let args = serde_json::json!({"program": "sh", "args": ["-c", script], "env": {"EXTRA": "1"}})
        .to_string();
    let run = shell_task_once(dir.path(), "shell.env", &args, RunStatus::Failed).await;
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("exit status: 3"),
        "{run:?}"
    );
    let output = run.output.clone().unwrap_or_default();
    let fire = chrono::DateTime::from_timestamp_millis(run.fire_ts_ms)
        .map(scheduler_core::rfc3339)
        .unwrap();
    for expected in [
        "CRONMESH_TASK=shell.env".to_owned(),
        format!("CRONMESH_RUN_ID={}", run.run_id),
        format!("CRONMESH_FIRE_TIME={fire}"),
        "CRONMESH_ATTEMPT=1".to_owned(),
        format!("CRONMESH_NODE={}", run.node_id),
        "oops".to_owned(),
    ] {
        assert!(output.contains(&expected), "missing {expected} in {output}");
    }
    assert!(node.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_running_task_finish_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]);
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "slow.three",
            "--trigger-json",
            &date_in(4),
            "--handler",
            "sleep",
            "--args",
            r#"{"ms":3000}"#,
        ],
    );
    let db = node_db(dir.path()).await;
    wait_for("the run to start", Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            runs_of(&db, "slow.three")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Running)
        }
    })
    .await;
    node.signal(Signal::SIGTERM);
    let status = node.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", node.log());
    let runs = runs_of(&db, "slow.three").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded, "{:?}", runs[0]);
    assert!(runs[0].duration_ms.unwrap_or(0) >= 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_interrupts_what_outlives_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[("CRONMESH__NODE__SHUTDOWN_GRACE_SECS", "1")]);
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "slow.ten",
            "--trigger-json",
            &date_in(4),
            "--handler",
            "sleep",
            "--args",
            r#"{"ms":10000}"#,
        ],
    );
    let db = node_db(dir.path()).await;
    wait_for("the run to start", Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            runs_of(&db, "slow.ten")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Running)
        }
    })
    .await;
    let asked = std::time::Instant::now();
    node.signal(Signal::SIGTERM);
    let status = node.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", node.log());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}: {}",
        asked.elapsed(),
        node.log()
    );
    let runs = runs_of(&db, "slow.ten").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Interrupted, "{:?}", runs[0]);
}

/// Lines of a JSON log that say a catch-up run of `task` started.
fn catch_up_runs(log: &str, task: &str) -> usize {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["task"] == task
                && v["fields"]["reason"] == "CatchUp"
                && v["fields"]["message"] == "run started"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn misfire_policies_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    for (name, policy) in [
        ("mf.once", "fire_once"),
        ("mf.skip", "skip"),
        ("mf.all", "fire_all:2"),
    ] {
        cli_ok(
            dir.path(),
            &[
                "tasks",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--handler",
                "noop",
                "--misfire",
                policy,
                "--misfire-grace",
                "0",
            ],
        );
    }
    let json_logs = [("CRONMESH__LOG__FORMAT", "json")];
    let node = NodeProcess::start(dir.path(), &json_logs);
    let db = node_db(dir.path()).await;
    wait_for("a run of each task", Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            for t in ["mf.once", "mf.skip", "mf.all"] {
                if runs_of(&db, t).await.is_empty() {
                    return None;
                }
            }
            Some(())
        }
    })
    .await;
    assert!(node.stop().success());
    // Several fires pass while no node runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let node = NodeProcess::start(dir.path(), &json_logs);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = node.log();
    assert!(node.stop().success());

    assert_eq!(
        catch_up_runs(&log, "mf.once"),
        1,
        "fire_once: exactly one catch-up run\n{log}"
    );
    assert_eq!(catch_up_runs(&log, "mf.skip"), 0, "skip: none");
    assert_eq!(catch_up_runs(&log, "mf.all"), 2, "fire_all:2: two");
    for (task, policy) in [
        ("mf.once", "fire_once"),
        ("mf.skip", "skip"),
        ("mf.all", "fire_all:2"),
    ] {
        let misfired: Vec<_> = runs_of(&db, task)
            .await
            .into_iter()
            .filter(|r| r.status == RunStatus::Misfired)
            .collect();
        assert_eq!(misfired.len(), 1, "{task}: one record of the skipped fires");
        let why = misfired[0].error.clone().unwrap_or_default();
        assert!(why.contains(&format!("misfire policy {policy}")), "{why}");
        // Its log event is a full fire event naming the same run.
        let event = fire_events(&log)
            .into_iter()
            .find(|v| v["fields"]["task"] == task && v["fields"]["status"] == "misfired")
            .unwrap_or_else(|| panic!("{task}: no misfired event in\n{log}"));
        assert_eq!(event["fields"]["run_id"], misfired[0].run_id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_and_enable_take_effect_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "toggle.me",
            "--cron",
            "* * * * * *",
            "--handler",
            "noop",
        ],
    );
    let node = NodeProcess::start(dir.path(), &[]);
    let db = node_db(dir.path()).await;
    wait_for("first runs", Duration::from_secs(10), || {
        let db = db.clone();
        async move { (runs_of(&db, "toggle.me").await.len() >= 2).then_some(()) }
    })
    .await;

    cli_ok(dir.path(), &["tasks", "disable", "toggle.me"]);
    let disabled_at = Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late: Vec<i64> = runs_of(&db, "toggle.me")
        .await
        .iter()
        .map(|r| r.fire_ts_ms)
        .filter(|f| *f > disabled_at + 2000)
        .collect();
    assert!(
        late.is_empty(),
        "fires more than 2 s after disable: {late:?}"
    );

    cli_ok(dir.path(), &["tasks", "enable", "toggle.me"]);
    let enabled_at = Utc::now().timestamp_millis();
    wait_for("fires after enable", Duration::from_secs(3), || {
        let db = db.clone();
        async move {
            runs_of(&db, "toggle.me")
                .await
                .iter()
                .any(|r| r.fire_ts_ms > enabled_at)
                .then_some(())
        }
    })
    .await;
    let first_after = runs_of(&db, "toggle.me")
        .await
        .iter()
        .map(|r| r.fire_ts_ms)
        .find(|f| *f > enabled_at)
        .unwrap();
    assert!(
        first_after - enabled_at <= 2000,
        "first fire {} ms after enable",
        first_after - enabled_at
    );

    // run-now on a task that would not fire during the test.
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "manual.only",
            "--cron",
            "0 0 1 1 *",
            "--handler",
            "noop",
        ],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cli_ok(dir.path(), &["tasks", "run-now", "manual.only"]);
    let asked = Utc::now().timestamp_millis();
    let run = wait_for("the requested run", Duration::from_secs(3), || {
        let db = db.clone();
        async move { runs_of(&db, "manual.only").await.into_iter().next() }
    })
    .await;
    assert!(run.started_at.timestamp_millis() - asked <= 2000);
    assert_eq!(runs_of(&db, "manual.only").await.len(), 1);

    // Removed and added again (same name, new schedule): the node follows.
    cli_ok(dir.path(), &["tasks", "remove", "manual.only"]);
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "manual.only",
            "--cron",
            "* * * * * *",
            "--handler",
            "noop",
        ],
    );
    let re_added = Utc::now().timestamp_millis();
    wait_for(
        "the re-added task to fire on its new schedule",
        Duration::from_secs(4),
        || {
            let db = db.clone();
            async move {
                runs_of(&db, "manual.only")
                    .await
                    .iter()
                    .any(|r| r.fire_ts_ms > re_added && r.fire_ts_ms % 1000 == 0)
                    .then_some(())
            }
        },
    )
    .await;
    assert!(node.stop().success());
}

#[test]
fn bad_task_definitions_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &[
                "--cron",
                "* * * * *",
                "--handler",
                "shell",
                "--args",
                r#"{"programme":"x"}"#,
            ],
            "unknown field `programme`",
        ),
        (
            &["--cron", "* * * * *", "--handler", "shell"],
            "missing field `program`",
        ),
        (
            &[
                "--cron",
                "* * * * *",
                "--handler",
                "noop",
                "--args",
                "not json",
            ],
            "--args \"not json\" is not valid JSON",
        ),
        (
            &["--cron", "0 0 32 * *", "--handler", "noop"],
            "day-of-month 32 is out of range 1-31",
        ),
        (
            &["--cron", "@daily", "--tz", "Mars/Base", "--handler", "noop"],
            "unknown time zone \"Mars/Base\"",
        ),
        (
            &["--cron", "* * * * *", "--handler", "rsync"],
            "unknown handler \"rsync\"",
        ),
        (
            &["--trigger-conf", "nightly", "--handler", "noop"],
            "no shared trigger conf named \"nightly\"",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["tasks", "add", "bad.task"];
        full.extend_from_slice(args);
        let out = cronmesh(dir.path(), &full, &[]);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{full:?}: {}",
            stderr(&out)
        );
    }
    let bad_misfire = cronmesh(
        dir.path(),
        &[
            "tasks",
            "add",
            "bad.task",
            "--cron",
            "@daily",
            "--handler",
            "noop",
            "--misfire",
            "sometimes",
        ],
        &[],
    );
    assert_eq!(bad_misfire.status.code(), Some(2));
    assert!(stderr(&bad_misfire).contains("\"sometimes\""));
    assert_eq!(
        cli_ok(dir.path(), &["tasks", "list", "--json"]).trim(),
        "[]"
    );
    assert_eq!(cli_ok(dir.path(), &["runs", "--json"]).trim(), "[]");
}

#[test]
fn shared_trigger_confs_reschedule_their_tasks_and_cannot_be_removed_in_use() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(
        dir.path(),
        &[
            "triggers",
            "add",
            "nightly",
            r#"{"type":"cron","expr":"0 2 * * *","timezone":"Europe/Berlin"}"#,
        ],
    );
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "report.daily",
            "--trigger-conf",
            "nightly",
            "--handler",
            "noop",
        ],
    );
    let show = |dir: &Path| {
        serde_json::from_str::<serde_json::Value>(&cli_ok(dir, &["tasks", "show", "report.daily"]))
            .unwrap()
    };
    let before = show(dir.path())["version"].as_i64().unwrap();
    let out = cli_ok(
        dir.path(),
        &[
            "triggers",
            "set",
            "nightly",
            r#"{"type":"cron","expr":"0 3 * * *","timezone":"Europe/Berlin"}"#,
        ],
    );
    assert!(out.contains("1 task(s) rescheduled"), "{out}");
    assert!(
        show(dir.path())["version"].as_i64().unwrap() > before,
        "the task's version moved, so nodes reload it"
    );
    let refused = cronmesh(dir.path(), &["triggers", "remove", "nightly"], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("used by 1 task(s): report.daily"),
        "{}",
        stderr(&refused)
    );
    let bad = cronmesh(
        dir.path(),
        &[
            "triggers",
            "set",
            "nightly",
            r#"{"type":"cron","expr":"0 25 * * *"}"#,
        ],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("hour 25 is out of range"),
        "{}",
        stderr(&bad)
    );
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "set-trigger",
            "report.daily",
            "--cron",
            "0 5 * * *",
        ],
    );
    let task = show(dir.path());
    assert_eq!(task["trigger_conf"], serde_json::Value::Null);
    assert_eq!(task["trigger"]["expr"], "0 5 * * *");
    assert_eq!(task["schedule_overridden"], true);
    cli_ok(dir.path(), &["triggers", "remove", "nightly"]);
    cli_ok(dir.path(), &["tasks", "remove", "report.daily"]);
    assert_eq!(
        cli_ok(dir.path(), &["tasks", "list", "--json"]).trim(),
        "[]"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_shell_disabled_does_not_run_shell_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let args = r#"{"program":"touch","args":["ran"]}"#;
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "shell.off",
            "--cron",
            "* * * * * *",
            "--handler",
            "shell",
            "--args",
            args,
        ],
    );
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "noop.on",
            "--cron",
            "* * * * * *",
            "--handler",
            "noop",
        ],
    );
    let node = NodeProcess::start(
        dir.path(),
        &[("CRONMESH__HANDLERS__SHELL_ENABLED", "false")],
    );
    let db = node_db(dir.path()).await;
    wait_for(
        "the other task to run twice",
        Duration::from_secs(10),
        || {
            let db = db.clone();
            async move { (runs_of(&db, "noop.on").await.len() >= 2).then_some(()) }
        },
    )
    .await;
    let log = node.log();
    assert!(node.stop().success());
    assert!(runs_of(&db, "shell.off").await.is_empty());
    assert!(!dir.path().join("ran").exists());
    assert!(
        log.contains("handler \"shell\" is not available on this node"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_pause_stops_every_fire_until_resume_and_the_audit_trail_has_it() {
    let dir = tempfile::tempdir().unwrap();
    cli_ok(
        dir.path(),
        &[
            "tasks",
            "add",
            "pause.tick",
            "--cron",
            "* * * * * *",
            "--handler",
            "noop",
            "--misfire",
            "skip",
        ],
    );
    let node = NodeProcess::start(dir.path(), &[]);
    let db = node_db(dir.path()).await;
    wait_for("a run", Duration::from_secs(10), || {
        let db = db.clone();
        async move { (!runs_of(&db, "pause.tick").await.is_empty()).then_some(()) }
    })
    .await;
    cli_ok(dir.path(), &["pause", "--reason", "database maintenance"]);
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", node.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["cluster"]["paused"], true, "{health}");
    assert_eq!(health["cluster"]["reason"], "database maintenance");
    // The node sees the pause within its change check (a second); then nothing fires.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = runs_of(&db, "pause.tick").await.len();
    // A run-now request while paused is kept for after the pause.
    cli_ok(dir.path(), &["tasks", "run-now", "pause.tick"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        runs_of(&db, "pause.tick").await.len(),
        before,
        "nothing fires while paused"
    );
    cli_ok(dir.path(), &["resume", "--reason", "maintenance done"]);
    wait_for("runs again", Duration::from_secs(10), || {
        let db = db.clone();
        async move { (runs_of(&db, "pause.tick").await.len() > before).then_some(()) }
    })
    .await;
    let log = node.log();
    assert!(node.stop().success());
    assert!(log.contains("scheduler paused"), "{log}");

    // A pause needs a reason.
    let out = cronmesh(dir.path(), &["pause"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let audit = cli_ok(dir.path(), &["audit", "--json", "--limit", "10"]);
    let events: Vec<serde_json::Value> = serde_json::from_str(&audit).unwrap();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "cluster.resume",
            "task.run_now",
            "cluster.pause",
            "task.create"
        ],
        "{audit}"
    );
    assert_eq!(events[2]["reason"], "database maintenance");
    assert_eq!(events[2]["after"]["paused"], true);
    assert_eq!(events[2]["before"]["paused"], false);
    assert!(
        events[2]["actor"]
            .as_str()
            .unwrap_or("")
            .starts_with("cli:"),
        "{audit}"
    );
    assert_eq!(events[3]["target"], "task:pause.tick");
    assert_eq!(events[3]["after"]["handler"], "noop");
}
