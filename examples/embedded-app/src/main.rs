//! An application with its own tasks and every cronmesh subcommand.
//!
//! - `embedded-app serve`: the application's own actix System, with a cronmesh node started
//!   inside it next to whatever else the application runs.
//! - `embedded-app <anything else>`: the cronmesh CLI (`run`, `check`, `tasks`, ...) with the
//!   application's tasks linked in.

mod orders;

use std::process::ExitCode;

use scheduler_actors::{CodeTasks, NodeBuilder, NodeConfig};

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return serve();
    }
    cronmesh::cli::run(CodeTasks::from_inventory())
}

/// The application's own System: start a node inside it, stop it on Ctrl-C.
fn serve() -> ExitCode {
    let system = actix::System::new();
    let result = system.block_on(async {
        let config = NodeConfig {
            database_url: "sqlite://embedded-app.db".into(),
            ..NodeConfig::default()
        };
        let node = NodeBuilder::new(config)
            .code_tasks(CodeTasks::from_inventory())
            .start()
            .await?;
        println!("node {} running; Ctrl-C to stop", node.id());
        let _ = tokio::signal::ctrl_c().await;
        node.shutdown().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
