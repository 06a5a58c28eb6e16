//! `shell`: runs a program directly (no implicit shell) in its own process group.
//!
//! The process gets `CRONMESH_TASK`, `CRONMESH_RUN_ID`, `CRONMESH_FIRE_TIME` (RFC 3339 UTC of
//! the scheduled fire), `CRONMESH_ATTEMPT` and `CRONMESH_NODE`, its own `env`, and the node's
//! environment without the node's own settings (`CRONMESH__*`, which hold its database and
//! Redis URLs). A non-zero exit fails the run; the last 4 KiB of stdout and stderr are kept
//! with it. On timeout or cancellation the whole
//! group gets SIGTERM, then SIGKILL a second later, so children go too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::parse_args;
use crate::tasks::handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};

/// Environment variables whose names start with this, in any case, are the node's settings
/// (or near misses of them, which may hold the same secrets) and never reach a task.
const NODE_SETTINGS_PREFIX: &str = "CRONMESH";

/// How much output is kept with a run.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// Arguments of `shell`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// The program (a path, or a name looked up in PATH).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Text written to the program's standard input, which is then closed (none: empty
    /// input). A crontab line's text after `%` arrives this way.
    #[serde(default)]
    pub stdin: Option<String>,
}

impl ShellArgs {
    pub(crate) fn validate(self) -> Result<(), String> {
        if self.program.trim().is_empty() {
            return Err("handler_args for `shell`: `program` is empty".to_owned());
        }
        if let Some(k) = self.env.keys().find(|k| k.is_empty() || k.contains('=')) {
            return Err(format!(
                "handler_args for `shell`: env name {k:?} is not a valid variable name"
            ));
        }
        Ok(())
    }
}

/// The `shell` handler.
#[derive(Debug, Default, Clone)]
pub struct ShellHandler {
    /// The node's own `CRONMESH__*` settings a task may still see
    /// (`handlers.shell_pass_env`).
    pass_env: Arc<[String]>,
}

impl ShellHandler {
    /// A handler whose tasks also see these of the node's `CRONMESH__*` settings.
    pub fn passing(names: &[String]) -> Self {
        ShellHandler {
            pass_env: names.into(),
        }
    }
}

/// Keeps the last [`OUTPUT_TAIL_BYTES`] of everything written to it.
#[derive(Debug, Default, Clone)]
struct Tail(Arc<Mutex<Vec<u8>>>);

impl Tail {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        buf.extend_from_slice(bytes);
        if buf.len() > OUTPUT_TAIL_BYTES {
            let cut = buf.len() - OUTPUT_TAIL_BYTES;
            buf.drain(..cut);
        }
    }

    fn text(&self) -> Option<String> {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned())
    }
}

async fn drain(mut from: impl AsyncRead + Unpin, into: Tail) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        into.push(&chunk[..n]);
    }
}

fn signal_group(pid: Option<u32>, signal: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The child leads its own group, so this reaches everything it started.
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

impl TaskHandler for ShellHandler {
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        let pass_env = self.pass_env.clone();
        Box::pin(async move {
            let args: ShellArgs =
                parse_args("shell", ctx.args.as_ref()).map_err(TaskFailure::new)?;
            let mut cmd = Command::new(&args.program);
            // The node's own settings (its database and Redis URLs, passwords and all) are
            // not the task's business: a task sees the rest of the node's environment, those
            // listed in `handlers.shell_pass_env`, and what its own `env` gives it.
            for (name, _) in std::env::vars_os() {
                let text = name.to_string_lossy();
                if text.to_ascii_uppercase().starts_with(NODE_SETTINGS_PREFIX)
                    && !pass_env.iter().any(|passed| *passed == text)
                {
                    cmd.env_remove(&name);
                }
            }
            cmd.args(&args.args)
                .envs(&args.env)
                .env("CRONMESH_TASK", &ctx.task)
                .env("CRONMESH_RUN_ID", &ctx.run_id)
                .env("CRONMESH_FIRE_TIME", scheduler_core::rfc3339(ctx.fire_time))
                .env("CRONMESH_ATTEMPT", ctx.attempt.to_string())
                .env("CRONMESH_NODE", &ctx.node)
                .stdin(if args.stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            if let Some(dir) = &args.cwd {
                cmd.current_dir(dir);
            }
            let mut child = cmd.spawn().map_err(|e| {
                TaskFailure::new(format!("could not start {:?}: {e}", args.program))
            })?;
            let pid = child.id();
            if let (Some(text), Some(mut input)) = (args.stdin.clone(), child.stdin.take()) {
                // A program that never reads its input must not hold the run up: written
                // alongside, and closed when written (or when the program has gone).
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = input.write_all(text.as_bytes()).await;
                    let _ = input.shutdown().await;
                });
            }
            let tail = Tail::default();
            let readers = [
                child
                    .stdout
                    .take()
                    .map(|o| tokio::spawn(drain(o, tail.clone()))),
                child
                    .stderr
                    .take()
                    .map(|e| tokio::spawn(drain(e, tail.clone()))),
            ];
            let status = tokio::select! {
                status = child.wait() => status,
                () = ctx.cancel.cancelled() => {
                    signal_group(pid, Signal::SIGTERM);
                    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
                    // Whatever is left of the group (a child that ignored SIGTERM while the
                    // leader exited) goes now.
                    signal_group(pid, Signal::SIGKILL);
                    let _ = child.wait().await;
                    return Err(TaskFailure { message: "process group killed: run cancelled".to_owned(), output: tail.text() });
                }
            };
            // Whatever the grandchildren still hold open is not worth waiting for long.
            for reader in readers.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
            let status = status
                .map_err(|e| TaskFailure::new(format!("waiting for {:?}: {e}", args.program)))?;
            if status.success() {
                Ok(TaskOutput {
                    output: tail.text(),
                })
            } else {
                Err(TaskFailure {
                    message: format!("{:?} exited with {status}", args.program),
                    output: tail.text(),
                })
            }
        })
    }
}
