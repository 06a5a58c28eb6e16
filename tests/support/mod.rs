//! Helpers shared by the integration tests.

pub mod history;
pub mod node;
pub mod postgres;
pub mod proxy;
pub mod redis;

use std::path::Path;
use std::process::{Command, Output};

/// The `cronmesh` binary built for these tests.
pub fn cronmesh_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cronmesh")
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
