//! The example application, built and run: its command line knows its jobs and its own
//! subcommand; its node runs the jobs with the application's state, raises alerts from run
//! events, is watched by the application's own actor, pauses, resumes and stops cleanly.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The settings a test process must not inherit, and the test's own database.
fn command(bin: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.to_ascii_uppercase().starts_with("CRONMESH") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .env("CRONMESH__DATABASE__URL", "sqlite://billing.db")
        .env("CRONMESH__HTTP__ENABLED", "false")
        .env("BILLING_LEDGER", dir.join("ledger.txt"));
    cmd
}

fn ctl(dir: &Path, args: &[&str]) -> Output {
    command(env!("CARGO_BIN_EXE_billing-ctl"), dir)
        .args(args)
        .output()
        .expect("billing-ctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_command_line_is_the_applications_own() {
    let dir = tempfile::tempdir().unwrap();
    let check = ctl(dir.path(), &["check"]);
    let out = text(&check.stdout);
    assert!(check.status.success(), "{out}{}", text(&check.stderr));
    assert!(
        out.contains("billing.invoice") && out.contains("billing.sync_rates"),
        "the library's jobs are linked in: {out}"
    );
    let help = ctl(dir.path(), &["--help"]);
    let help_text = text(&help.stdout);
    assert!(help.status.success());
    assert!(
        help_text.contains("Billing's scheduled jobs, on cronmesh"),
        "{help_text}"
    );
    assert!(help_text.contains("billing-ctl"), "{help_text}");
    assert!(
        help_text.contains("ledger") && help_text.contains("tasks"),
        "{help_text}"
    );
    assert!(!help_text.contains("bench"), "bench is hidden: {help_text}");
    let version = ctl(dir.path(), &["--version"]);
    assert_eq!(text(&version.stdout).trim(), "billing-ctl 1.0.0");
    let bad = ctl(dir.path(), &["no-such-command"]);
    assert_eq!(bad.status.code(), Some(2), "usage errors are bad input");

    std::fs::write(dir.path().join("ledger.txt"), "invoice a\ninvoice b\n").unwrap();
    let ledger = ctl(dir.path(), &["ledger", "--file", "ledger.txt"]);
    assert!(ledger.status.success());
    assert!(text(&ledger.stdout).contains("2 entries"));
}

#[test]
fn the_node_runs_the_jobs_with_the_apps_state_and_events_pauses_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("node.out")).unwrap();
    let mut node = command(env!("CARGO_BIN_EXE_billing-node"), dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("billing-node starts");
    let output = || std::fs::read_to_string(dir.path().join("node.out")).unwrap_or_default();
    let wait_for = |what: &str, pattern: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !output().contains(pattern) {
            assert!(Instant::now() < deadline, "no {what} in:\n{}", output());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let pid = Pid::from_raw(node.id() as i32);
    wait_for("invoice run", "event: billing.invoice succeeded");
    wait_for(
        "alert",
        "alert: billing.sync_rates failed: no exchange-rate source configured",
    );
    wait_for(
        "watcher",
        "watcher: scheduled billing.invoice, billing.sync_rates",
    );

    let ledger = || std::fs::read_to_string(dir.path().join("ledger.txt")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ledger().lines().count() < 2 {
        assert!(Instant::now() < deadline, "two invoices:\n{}", output());
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(pid, Signal::SIGUSR1).unwrap();
    wait_for("pause", "paused");
    std::thread::sleep(Duration::from_millis(300));
    let before = ledger().lines().count();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        ledger().lines().count(),
        before,
        "nothing runs while paused"
    );
    kill(pid, Signal::SIGUSR2).unwrap();
    wait_for("resume", "resumed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ledger().lines().count() <= before {
        assert!(
            Instant::now() < deadline,
            "invoices again after resume:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    kill(pid, Signal::SIGTERM).unwrap();
    let status = node.wait().unwrap();
    let out = output();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("event: node stopped") && out.contains("stopped"),
        "{out}"
    );
    // The node logged through the application's subscriber.
    assert!(out.contains("node started"), "{out}");

    // Every invoice in the ledger (written through the app's state) is a recorded run.
    let entries = ledger();
    let invoices = entries
        .lines()
        .filter(|l| l.starts_with("invoice "))
        .count();
    let runs = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = store::connect(&format!(
            "sqlite://{}",
            dir.path().join("billing.db").display()
        ))
        .await
        .unwrap();
        store::list_runs(
            &db,
            &store::RunFilter {
                task: Some("billing.invoice".into()),
                status: Some(entity::task_run::RunStatus::Succeeded),
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len()
    });
    assert!(invoices >= 3, "{entries}");
    assert_eq!(invoices, runs, "{entries}");
}
