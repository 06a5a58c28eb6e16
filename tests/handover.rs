//! The hand-over from another scheduler: shadow mode, `shadow-diff` and the cut-over.
//!
//! The APScheduler test runs the real APScheduler 3 (the old scheduler) and a cronmesh node
//! side by side on the same jobs, compares them in shadow mode, cuts over at an instant with
//! the old scheduler stopped just before it, and checks that the old runs before the instant
//! and cronmesh's runs from it are exactly the fires the schedule has: none lost, none twice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;

use crate::support::history::{executions, logging_shell_args};
use crate::support::node::{NodeProcess, node_db, runs_of};
use crate::support::{cronmesh, stderr, stdout, venv_program};

/// Sleeps until the wall clock reaches `at`.
fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        std::thread::sleep(wait);
    }
}

/// The fire times of a stored task's trigger in `[from, to)`.
async fn expected_fires(
    db: &sea_orm::DatabaseConnection,
    task: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<i64> {
    let row = store::get_task(db, task).await.unwrap().row;
    let trigger = scheduler_core::Trigger::from_json(row.trigger_json.as_deref().unwrap()).unwrap();
    trigger
        .fires_between(from - chrono::Duration::milliseconds(1), to)
        .filter(|t| *t >= from && *t < to)
        .map(|t| t.timestamp_millis())
        .collect()
}

/// The old scheduler's runs from its run log, by job id (epoch ms).
fn old_runs(runlog: &Path) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for line in std::fs::read_to_string(runlog).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = DateTime::parse_from_rfc3339(v["fire_time"].as_str().unwrap()).unwrap();
        out.entry(v["job"].as_str().unwrap().to_owned())
            .or_default()
            .push(at.timestamp_millis());
    }
    out
}

/// The guide's hand-over command that starts with `start` (`cronmesh import`, ...), as
/// arguments, with `SINCE` and `CUT` replaced: the test runs what docs/migrating.md shows.
fn guide_command(start: &str, since: &str, cut: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = std::fs::read_to_string(root.join("docs/migrating.md")).unwrap();
    let block = guide
        .split("<!-- hand-over steps: tests/handover.rs -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/migrating.md has the hand-over steps block");
    let line = block
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no `{start}` in the guide's hand-over steps"));
    line.split_whitespace()
        .skip(1)
        .map(|w| w.replace("SINCE", since).replace("CUT", cut))
        .collect()
}

struct OldScheduler(Child);

impl Drop for OldScheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apscheduler_jobs_are_compared_in_shadow_and_cut_over_without_a_lost_or_doubled_fire() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let url = format!("sqlite:///{}/jobs.sqlite", dir.path().display());
    let runlog = dir.path().join("old-runs.jsonl");
    let exec_log = dir.path().join("executions.log");

    // The interval job counts from an anchor on a multiple of 6 s, so a cut-over on such an
    // instant falls on a fire of both jobs, and neither fires in the last second before it.
    let anchor = (Utc::now().timestamp() - 60) / 6 * 6;
    let mut old = OldScheduler(
        Command::new(venv_program("bin/python"))
            .arg(root.join("tests/apscheduler/old_scheduler.py"))
            .arg(&url)
            .arg(dir.path())
            .arg(&runlog)
            .arg(anchor.to_string())
            .spawn()
            .unwrap(),
    );
    let ready = dir.path().join("ready");
    for _ in 0..200 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready.exists(), "the old scheduler did not start");

    // Export, map every job to a shell command that logs its run, import in shadow mode.
    let export = Command::new(venv_program("bin/python"))
        .arg(root.join("scripts/apscheduler-export.py"))
        .arg(&url)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", stderr(&export));
    std::fs::write(dir.path().join("export.json"), &export.stdout).unwrap();
    let args: serde_json::Value = serde_json::from_str(&logging_shell_args(&exec_log, 0)).unwrap();
    std::fs::write(
        dir.path().join("map.toml"),
        format!(
            "[\"*\"]\nhandler = \"shell\"\nargs = {}\n",
            toml_inline(&args)
        ),
    )
    .unwrap();
    let import = guide_command("cronmesh import", "", "");
    let import: Vec<&str> = import.iter().map(String::as_str).collect();
    let out = cronmesh(dir.path(), &import, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("created apscheduler.every-2s (job every-2s, shadow)"),
        "{report}"
    );

    let node = NodeProcess::start(dir.path(), &[]);
    let since = DateTime::from_timestamp(Utc::now().timestamp() + 2, 0).unwrap();
    // The cut-over: on the anchor's 6 s grid, 25-30 s ahead; the old scheduler stops a
    // second before it (after its last fire before the instant). The margin leaves the two
    // cutover commands below 8 s beyond the 10 s lead on a loaded machine (with 15-20 s, a
    // slow node start once left the real command 9.9 s ahead).
    let cut_secs = (Utc::now().timestamp() + 30 - anchor).div_euclid(6) * 6 + anchor;
    let cut = DateTime::from_timestamp(cut_secs, 0).unwrap();
    std::fs::write(dir.path().join("stop_at"), (cut_secs - 1).to_string()).unwrap();

    // Shadow: recorded, not run.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        executions(&exec_log).is_empty(),
        "a handler ran in shadow mode"
    );

    // Cut over, ahead of the instant by more than the lead the command asks for.
    sleep_until(cut - chrono::Duration::seconds(18));
    let at = scheduler_core::rfc3339(cut);
    let too_soon = scheduler_core::rfc3339(Utc::now() + chrono::Duration::seconds(5));
    let out = cronmesh(
        dir.path(),
        &[
            "tasks",
            "cutover",
            "--module",
            "apscheduler",
            "--at",
            &too_soon,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("less than 10 s ahead"),
        "{}",
        stderr(&out)
    );
    let cutover = guide_command("cronmesh tasks cutover", "", &at);
    let cutover: Vec<&str> = cutover.iter().map(String::as_str).collect();
    let out = cronmesh(dir.path(), &cutover, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let until = cut + chrono::Duration::seconds(7);
    sleep_until(until + chrono::Duration::seconds(2));
    let status = old.0.wait().unwrap();
    assert!(status.success(), "the old scheduler failed");
    assert!(node.stop_keeping_log().success());

    // shadow-diff over the shadow window: cronmesh's shadow fires are the old scheduler's.
    let diff = guide_command("cronmesh shadow-diff", &scheduler_core::rfc3339(since), &at);
    let diff: Vec<&str> = diff.iter().map(String::as_str).collect();
    assert_eq!(diff[1], "old-runs.jsonl", "the guide's run log name");
    let out = cronmesh(dir.path(), &diff, &[]);
    let shown = stdout(&out);
    assert!(out.status.success(), "{shown}{}", stderr(&out));
    assert!(shown.contains("no differences"), "{shown}");
    assert!(shown.contains("apscheduler.weekday_09_30: "), "{shown}");

    // The same with the old log altered: one run dropped, one moved by a second, one job
    // cronmesh does not know: each is reported, and the exit status is 1.
    let lines: Vec<String> = std::fs::read_to_string(&runlog)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let in_window = |l: &String| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let t = DateTime::parse_from_rfc3339(v["fire_time"].as_str().unwrap()).unwrap();
        v["job"] == "every-2s" && t >= since && t < cut
    };
    let first = lines.iter().position(in_window).unwrap();
    let second = first + 1 + lines[first + 1..].iter().position(in_window).unwrap();
    let dropped: serde_json::Value = serde_json::from_str(&lines[first]).unwrap();
    let mut moved: serde_json::Value = serde_json::from_str(&lines[second]).unwrap();
    let moved_from = DateTime::parse_from_rfc3339(moved["fire_time"].as_str().unwrap()).unwrap();
    moved["fire_time"] = (moved_from + chrono::Duration::seconds(1))
        .to_rfc3339()
        .into();
    let mut altered: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(i, l)| {
            if i == second {
                moved.to_string()
            } else {
                l.clone()
            }
        })
        .collect();
    altered.push(format!(
        "{{\"job\":\"gone\",\"fire_time\":\"{}\"}}",
        scheduler_core::rfc3339(since + chrono::Duration::seconds(1))
    ));
    std::fs::write(dir.path().join("altered.jsonl"), altered.join("\n")).unwrap();
    let mut altered_diff = diff.clone();
    altered_diff[1] = "altered.jsonl";
    let out = cronmesh(dir.path(), &altered_diff, &[]);
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}{}", stderr(&out));
    let dropped_at = DateTime::parse_from_rfc3339(dropped["fire_time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        shown.contains("1 extra in cronmesh")
            && shown.contains(&format!(
                "extra in cronmesh    {}",
                scheduler_core::rfc3339(dropped_at)
            )),
        "{shown}"
    );
    assert!(
        shown.contains("1 at another time") && shown.contains("(-1 s)"),
        "{shown}"
    );
    assert!(
        shown.contains("job \"gone\": 1 runs, but no task is named \"gone\""),
        "{shown}"
    );

    // Across the cut-over: old runs before it, cronmesh's real runs from it, together exactly
    // the schedule's fires; cronmesh's records are shadow before and real from it.
    let db = node_db(dir.path()).await;
    let old = old_runs(&runlog);
    let mut real: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in executions(&exec_log) {
        let t = DateTime::parse_from_rfc3339(&e.fire_time).unwrap();
        real.entry(e.task).or_default().push(t.timestamp_millis());
    }
    let (since_ms, cut_ms, until_ms) = (
        since.timestamp_millis(),
        cut.timestamp_millis(),
        until.timestamp_millis(),
    );
    for (job, task) in [
        ("every-2s", "apscheduler.every-2s"),
        ("every-3s", "apscheduler.every-3s"),
    ] {
        let window = |v: &[i64]| -> Vec<i64> {
            v.iter()
                .copied()
                .filter(|t| (since_ms..until_ms).contains(t))
                .collect()
        };
        let by_old = window(old.get(job).map(Vec::as_slice).unwrap_or_default());
        let by_cronmesh = window(real.get(task).map(Vec::as_slice).unwrap_or_default());
        assert!(
            by_old.iter().all(|t| *t < cut_ms),
            "{job}: old ran after the cut-over"
        );
        assert!(
            by_cronmesh.iter().all(|t| *t >= cut_ms),
            "{task}: cronmesh ran a handler before the cut-over"
        );
        let mut together = [by_old.clone(), by_cronmesh.clone()].concat();
        together.sort_unstable();
        let expected = expected_fires(&db, task, since, until).await;
        assert!(
            !by_old.is_empty() && !by_cronmesh.is_empty(),
            "{job}: {together:?}"
        );
        assert_eq!(
            together, expected,
            "{job}: old + cronmesh against the schedule"
        );

        for run in runs_of(&db, task).await {
            if !(since_ms..until_ms).contains(&run.fire_ts_ms) {
                continue;
            }
            let want = if run.fire_ts_ms < cut_ms {
                RunStatus::Shadow
            } else {
                RunStatus::Succeeded
            };
            assert_eq!(run.status, want, "{task} at {}", run.fire_ts_ms);
        }
    }

    // `runs` shows the line where the task was cut over.
    let out = cronmesh(
        dir.path(),
        &["runs", "--task", "apscheduler.every-2s", "--limit", "200"],
        &[],
    );
    assert!(
        stdout(&out).contains("cut over: runs above are real, below shadow"),
        "{}",
        stdout(&out)
    );
}

/// A JSON object as a TOML inline table (strings, arrays of strings, numbers).
fn toml_inline(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_node_records_without_running_and_a_task_cut_over_runs_for_real_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let exec_log = dir.path().join("executions.log");
    let args = logging_shell_args(&exec_log, 0);
    for name in ["trial.plain", "trial.moving"] {
        let out = cronmesh(
            dir.path(),
            &[
                "tasks",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--handler",
                "shell",
                "--args",
                &args,
            ],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A task that runs for real has no cut-over to set.
    let later = scheduler_core::rfc3339(Utc::now() + chrono::Duration::seconds(60));
    let out = cronmesh(
        dir.path(),
        &["tasks", "cutover", "trial.moving", "--at", &later],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not in shadow mode"),
        "{}",
        stderr(&out)
    );

    let node = NodeProcess::start_with_args(dir.path(), &["--shadow"], &[]);
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", node.url);

    // Through the API: into shadow mode, then a cut-over (a bad instant is named first).
    let r = http
        .patch(api("/tasks/trial.moving"))
        .json(&serde_json::json!({"shadow": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(api("/tasks/trial.moving/cutover"))
        .json(&serde_json::json!({"at": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("\"soon\""), "{body}");
    assert_eq!(body["error"]["field"], "at");
    let cut = DateTime::from_timestamp(Utc::now().timestamp() + 15, 0).unwrap();
    let r = http
        .post(api("/tasks/trial.moving/cutover"))
        .json(&serde_json::json!({"at": scheduler_core::rfc3339(cut)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let task: serde_json::Value = r.json().await.unwrap();
    assert_eq!(task["shadow"], true);
    assert_eq!(task["cutover_at"], scheduler_core::rfc3339(cut));

    sleep_until(cut + chrono::Duration::seconds(4));
    let page = http
        .get(format!("{}/tasks/trial.moving", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Cut over at"),
        "no cut-over line on the task page"
    );
    assert!(
        page.contains("st-shadow"),
        "no shadow runs on the task page"
    );
    assert!(node.stop().success());

    let db = node_db(dir.path()).await;
    let plain = runs_of(&db, "trial.plain").await;
    assert!(plain.len() >= 5, "{plain:?}");
    assert!(
        plain.iter().all(|r| r.status == RunStatus::Shadow),
        "{plain:?}"
    );
    let cut_ms = cut.timestamp_millis();
    let moving = runs_of(&db, "trial.moving").await;
    assert!(moving.iter().any(|r| r.fire_ts_ms < cut_ms));
    assert!(moving.iter().filter(|r| r.fire_ts_ms >= cut_ms).count() >= 3);
    for r in &moving {
        let want = if r.fire_ts_ms < cut_ms {
            RunStatus::Shadow
        } else {
            RunStatus::Succeeded
        };
        assert_eq!(r.status, want, "{r:?}");
    }
    // Only the cut-over task's fires from the instant on ran a handler.
    let ran = executions(&exec_log);
    assert!(!ran.is_empty());
    for e in &ran {
        let t = DateTime::parse_from_rfc3339(&e.fire_time).unwrap();
        assert_eq!(e.task, "trial.moving");
        assert!(t.timestamp_millis() >= cut_ms, "{e:?}");
    }

    // Changing the mode afterwards. The API: `"shadow": true` on a task whose cut-over has
    // passed puts it back in shadow mode (the cut-over dropped); `false` makes it run for real.
    let node = NodeProcess::start(dir.path(), &[]);
    let api = |path: &str| format!("{}/api/v1{path}", node.url);
    for (shadow, cutover) in [
        (true, serde_json::Value::Null),
        (false, serde_json::Value::Null),
    ] {
        let r = http
            .patch(api("/tasks/trial.moving"))
            .json(&serde_json::json!({ "shadow": shadow }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let task: serde_json::Value = r.json().await.unwrap();
        assert_eq!(task["shadow"], shadow, "{task}");
        assert_eq!(task["cutover_at"], cutover, "{task}");
    }
    assert!(node.stop().success());
    // The CLI, for a whole module, on and off.
    for (args, want) in [
        (vec!["tasks", "shadow", "--module", "trial"], true),
        (vec!["tasks", "shadow", "--module", "trial", "--off"], false),
    ] {
        let out = cronmesh(dir.path(), &args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        for name in ["trial.plain", "trial.moving"] {
            let out = cronmesh(dir.path(), &["tasks", "show", name], &[]);
            let task: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(task["shadow"], want, "{args:?}: {task}");
        }
    }
    let out = cronmesh(dir.path(), &["tasks", "shadow", "--module", "nothing"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no task is in that module"),
        "{}",
        stderr(&out)
    );
}
