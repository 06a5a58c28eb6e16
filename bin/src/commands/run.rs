//! `cronmesh run`: a node, until SIGINT or SIGTERM, then a graceful shutdown (exit 0).

use std::process::ExitCode;

use anyhow::Context;
use scheduler_actors::{CodeTasks, NodeBuilder};

use crate::error::InvalidInput;
use crate::settings::Settings;

pub(crate) fn run(settings: &Settings, tasks: CodeTasks) -> anyhow::Result<ExitCode> {
    let _logs = crate::logging::init(settings)?;
    let config = settings.node_config();
    let system = actix::System::new();
    let result = system.block_on(async move {
        // Before the node starts: a SIGTERM that arrives while it starts (it is registered as
        // running by then) stops it gracefully afterwards instead of killing the process.
        let stop = StopSignals::install()?;
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .map_err(start_error)?;
        if node.http_addr().is_some() && settings.api_tokens.is_empty() {
            // Only on loopback (settings refuse anything else without tokens).
            tracing::warn!(
                "the operations API (/api/v1) has no tokens: anyone on this host may use it with admin rights; add [[http.tokens]] to require one"
            );
        }
        if let Some(addr) = node.http_addr() {
            tracing::info!(
                "admin HTTP on http://{addr} (the console at /, the API at /api/v1, /healthz, /metrics)"
            );
            // Said plainly too, whatever the log format: where a new user goes next.
            eprintln!("cronmesh console: http://{addr}/");
        }
        stop.wait().await;
        node.shutdown().await?;
        Ok::<_, anyhow::Error>(())
    });
    drop_system(system);
    result.context("running the node")?;
    Ok(ExitCode::SUCCESS)
}

/// Why a node could not start, in the settings' words where a setting is the cause: an admin
/// address this host does not have is bad input (2); one that another process holds is a
/// failure of the environment (1).
fn start_error(e: scheduler_actors::Error) -> anyhow::Error {
    use std::io::ErrorKind;
    match &e {
        scheduler_actors::Error::Http { addr, source } => match source.kind() {
            ErrorKind::AddrNotAvailable => anyhow::Error::new(InvalidInput(format!(
                "config key `http.bind`: {addr} is not an address of this host ({source})"
            ))),
            ErrorKind::AddrInUse => anyhow::anyhow!(
                "config key `http.bind`: {addr} is already in use by another process ({source}); stop it, or bind the admin server elsewhere"
            ),
            _ => anyhow::Error::new(e),
        },
        _ => anyhow::Error::new(e),
    }
}

/// Drops an actix System whose actors may still hold database pools. A pooled connection
/// needs a Tokio context to be dropped, and the System's own runtime is gone by then.
pub(crate) fn drop_system(system: actix::SystemRunner) {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let _context = rt.enter();
            drop(system);
        }
        Err(_) => drop(system),
    }
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Until one of them arrives (or has arrived since they were installed).
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
