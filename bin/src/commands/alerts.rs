//! `cronmesh alerts`: send a sample through a route, and the deliveries recorded.

use std::process::ExitCode;

use super::open_db;
use super::output::{clip, table};
use crate::cli::InvalidInput;
use crate::settings::Settings;

/// `alerts` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AlertsCommand {
    /// Send a sample alert through a route now (with its retries); exit 1 if it is not delivered.
    Test {
        /// The route's name (`[[alerts.routes]]`).
        route: String,
    },
    /// Alerts sent or given up on, newest first.
    List {
        /// Only about this task.
        #[arg(long)]
        task: Option<String>,
        /// Only to this route.
        #[arg(long)]
        route: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(settings: &Settings, cmd: AlertsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertsCommand::Test { route } => {
            // Recorded when the database is there; a route can be tried before it is.
            let db = open_db(settings).await.ok();
            let node = format!("cli:{}", gethostname::gethostname().to_string_lossy());
            let outcome = scheduler_actors::alerts::send_test(&settings.alerts, &route, db, &node)
                .await
                .map_err(InvalidInput)?;
            let status = outcome
                .http_status
                .map_or_else(String::new, |s| format!(", the receiver answered {s}"));
            if outcome.state == "sent" {
                println!(
                    "sent a test alert through {route} ({} attempt(s){status})",
                    outcome.attempts
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "the test alert through {route} was not delivered after {} attempt(s): {}",
                    outcome.attempts,
                    outcome.error.as_deref().unwrap_or("no answer")
                );
                Ok(ExitCode::FAILURE)
            }
        }
        AlertsCommand::List {
            task,
            route,
            limit,
            json,
        } => {
            if limit == 0 {
                return Err(
                    InvalidInput("--limit 0 would show nothing; give at least 1".into()).into(),
                );
            }
            let db = open_db(settings).await?;
            let rows = store::list_deliveries(
                &db,
                &store::DeliveryFilter {
                    task,
                    route,
                    limit,
                    before_id: None,
                },
            )
            .await?;
            if json {
                let list: Vec<serde_json::Value> = rows.iter().map(store::delivery_json).collect();
                println!("{}", serde_json::Value::Array(list));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table([
                "AT",
                "ROUTE",
                "EVENT",
                "TASK",
                "STATE",
                "ATTEMPTS",
                "HELD BACK",
                "ERROR",
            ]);
            for r in &rows {
                t.add_row([
                    scheduler_core::rfc3339(r.created_at),
                    r.route.clone(),
                    r.event.clone(),
                    r.task_name.clone(),
                    r.state.clone(),
                    r.attempts.to_string(),
                    r.suppressed.to_string(),
                    clip(r.error.as_deref().unwrap_or(""), 60),
                ]);
            }
            println!("{t}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
