//! `cronmesh nodes`: the cluster as the database sees it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use entity::task_run::RunStatus;
use store::RunFilter;

use super::open_db;
use super::output::table;
use crate::settings::Settings;

/// Arguments of `cronmesh nodes`.
#[derive(Debug, clap::Args)]
pub(crate) struct NodesArgs {
    /// JSON output.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(settings: &Settings, args: NodesArgs) -> anyhow::Result<ExitCode> {
    let db = open_db(settings).await?;
    let nodes = store::list_nodes(&db).await?;
    let running = store::list_runs(
        &db,
        &RunFilter {
            task: None,
            status: Some(RunStatus::Running),
            limit: 10_000,
            ..Default::default()
        },
    )
    .await?;
    let mut by_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &running {
        by_node
            .entry(r.node_id.as_str())
            .or_default()
            .push(r.task_name.as_str());
    }
    let now = Utc::now();
    if args.json {
        let list: Vec<serde_json::Value> = nodes
            .iter()
            .map(|n| {
                let mut json = store::node_json(n, now);
                json["running"] =
                    serde_json::json!(by_node.get(n.node_id.as_str()).cloned().unwrap_or_default());
                json
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table([
        "NODE",
        "HOST",
        "PID",
        "STATE",
        "LAST HEARTBEAT",
        "RUNNING",
        "ADMIN",
    ]);
    for n in &nodes {
        let age = (now - n.last_heartbeat).num_milliseconds() as f64 / 1000.0;
        t.add_row([
            n.node_id.clone(),
            n.host.clone(),
            n.pid.to_string(),
            n.state.as_str().to_owned(),
            format!(
                "{} ({age:.1} s ago)",
                scheduler_core::rfc3339(n.last_heartbeat)
            ),
            by_node
                .get(n.node_id.as_str())
                .map_or_else(|| "-".to_owned(), |t| t.join(", ")),
            n.admin_url.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
