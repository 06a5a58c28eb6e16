//! Helpers shared by the integration tests.

pub mod history;
pub mod node;
pub mod postgres;
pub mod proxy;
pub mod receiver;
pub mod redis;

use std::path::Path;
use std::process::{Command, Output};

/// The `cronmesh` binary built for these tests.
pub fn cronmesh_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cronmesh")
}

/// A program of the test venv (`$CRONMESH_VENV`, default /var/tmp/cronmesh-venv, which
/// scripts/services.sh makes): `bin/python`, `bin/schemathesis`. Fails, saying how to get it,
/// when it is missing.
pub fn venv_program(name: &str) -> std::path::PathBuf {
    let venv = std::env::var("CRONMESH_VENV").unwrap_or_else(|_| "/var/tmp/cronmesh-venv".into());
    let program = Path::new(&venv).join(name);
    assert!(
        program.exists(),
        "{} is missing: run scripts/services.sh (scripts/test.sh does)",
        program.display()
    );
    program
}

/// Runs `cronmesh ARGS` in `dir` with no config from the caller's environment.
pub fn cronmesh(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(cronmesh_bin());
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("CRONMESH__") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("cronmesh binary runs")
}

/// Stdout of a finished command as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a finished command as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The documented fields of an event about a fire.
pub const FIRE_FIELDS: [&str; 6] = ["task", "run_id", "fire_time", "node", "attempt", "status"];

/// Every `cron_task` event of a JSON log that is about a fire (it names a task and a status,
/// fire time or run), after checking that each has all six documented fields.
pub fn fire_events(log: &str) -> Vec<serde_json::Value> {
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "cron_task" && !v["fields"]["task"].is_null())
        .filter(|v| {
            ["status", "fire_time", "run_id"]
                .iter()
                .any(|f| !v["fields"][f].is_null())
        })
        .collect();
    for v in &events {
        for field in FIRE_FIELDS {
            assert!(
                !v["fields"][field].is_null(),
                "fire event without {field}: {v}"
            );
        }
    }
    events
}
