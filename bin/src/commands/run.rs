//! `cronmesh run`: a node, until SIGINT or SIGTERM, then a graceful shutdown (exit 0).

use std::process::ExitCode;

use anyhow::Context;
use scheduler_actors::{CodeTasks, NodeBuilder};

use crate::settings::Settings;

pub(crate) fn run(settings: &Settings, tasks: CodeTasks) -> anyhow::Result<ExitCode> {
    let _logs = crate::logging::init(settings);
    let config = settings.node_config();
    let system = actix::System::new();
    let result = system.block_on(async move {
        let node = NodeBuilder::new(config).code_tasks(tasks).start().await?;
        if let Some(addr) = node.http_addr {
            tracing::info!(
                "admin HTTP on http://{addr} (/healthz, /metrics, /api/actors, /api/tasks)"
            );
        }
        wait_for_stop_signal().await?;
        node.shutdown().await?;
        Ok::<_, anyhow::Error>(())
    });
    result.context("running the node")?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}
