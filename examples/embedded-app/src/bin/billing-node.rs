//! The billing application's node: cronmesh inside the application's own actix System.
//!
//! Settings come as for `cronmesh run` (`cronmesh.toml`, `CRONMESH__*`), the ledger file from
//! `BILLING_LEDGER` (default `billing-ledger.txt`). SIGUSR1 pauses the jobs, SIGUSR2 resumes
//! them, SIGINT or SIGTERM stops the node cleanly.

use std::process::ExitCode;
use std::time::Duration;

use embedded_app::Ledger;
use scheduler_actors::actix::{self, Actor, ActorFutureExt, AsyncContext, WrapFuture};
use scheduler_actors::{CodeTasks, NodeBuilder, NodeHandle, RunEvent, RunStatus};
use tokio::signal::unix::{SignalKind, signal};

/// An actor of the application's own: every second it asks the node what it schedules.
struct Watcher {
    node: NodeHandle,
}

impl Actor for Watcher {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(Duration::from_secs(1), |act, ctx| {
            // The reply future borrows nothing, so it can become an actor future.
            let reply = act
                .node
                .list_scheduled()
                .into_actor(act)
                .map(|reply, _act, _ctx| match reply {
                    Ok(tasks) => {
                        let own: Vec<String> = tasks
                            .iter()
                            .filter(|t| !t.builtin)
                            .map(|t| t.name.clone())
                            .collect();
                        println!("watcher: scheduled {}", own.join(", "));
                    }
                    Err(e) => println!("watcher: the node did not answer: {e}"),
                });
            ctx.spawn(reply);
        });
    }
}

fn main() -> ExitCode {
    // Without a subscriber the node's logs go nowhere.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match cronmesh::settings::Settings::load(None) {
        Ok(settings) => settings.node_config(),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let ledger_path =
        std::env::var("BILLING_LEDGER").unwrap_or_else(|_| "billing-ledger.txt".to_owned());
    let system = actix::System::new();
    let result = system.block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(CodeTasks::from_inventory())
            .app_data(Ledger::new(ledger_path, None))
            .start()
            .await?;
        println!("node {} started", node.id());

        // Alerts: a failed run is reported the moment it is recorded.
        let mut events = node.subscribe();
        let alerts = actix::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    RunEvent::RunFinished {
                        task,
                        status: RunStatus::Failed,
                        error,
                        ..
                    } => println!("alert: {task} failed: {}", error.unwrap_or_default()),
                    RunEvent::RunFinished { task, status, .. } => {
                        println!("event: {task} {}", status.as_str())
                    }
                    RunEvent::Lagged { missed } => println!("event: missed {missed}"),
                    RunEvent::NodeStopped => println!("event: node stopped"),
                    _ => {}
                }
            }
        });
        Watcher {
            node: node.handle(),
        }
        .start();

        let mut pause = signal(SignalKind::user_defined1())?;
        let mut resume = signal(SignalKind::user_defined2())?;
        let mut term = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = pause.recv() => {
                    node.pause().await?;
                    println!("paused");
                }
                _ = resume.recv() => {
                    node.resume().await?;
                    println!("resumed");
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        node.shutdown().await?;
        // The subscription ends after the node's last event.
        let _ = alerts.await;
        println!("stopped");
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
