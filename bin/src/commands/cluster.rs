//! `cronmesh pause` / `resume` (the whole cluster) and `cronmesh audit` (who changed what).

use std::process::ExitCode;

use super::output::{clip, table};
use super::{cli_actor, open_db, store_error};
use crate::settings::Settings;

/// Arguments of `cronmesh pause`.
#[derive(Debug, clap::Args)]
pub(crate) struct PauseArgs {
    /// Why (kept in the audit trail and shown by every node).
    #[arg(long)]
    reason: String,
}

/// Arguments of `cronmesh resume`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// Why (kept in the audit trail).
    #[arg(long, default_value = "resumed from the command line")]
    reason: String,
}

/// Arguments of `cronmesh audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only this target: `task:NAME`, `trigger_conf:NAME` or `cluster`.
    #[arg(long)]
    target: Option<String>,
    /// Only changes by this actor (`cli:USER` or `token:NAME`).
    #[arg(long)]
    actor: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// JSON output (with the before and after of each change).
    #[arg(long)]
    json: bool,
}

/// Pauses (`paused`) or resumes every node: nothing fires anywhere while paused.
pub(crate) async fn set_pause(
    settings: &Settings,
    paused: bool,
    reason: String,
) -> anyhow::Result<ExitCode> {
    let db = open_db(settings).await?;
    let state = store::set_cluster_pause(&db, paused, &cli_actor().because(reason))
        .await
        .map_err(store_error)?;
    super::notify_nodes(settings, "cluster").await;
    if state.paused {
        println!("cluster paused: no task fires on any node until `cronmesh resume`");
    } else {
        println!("cluster resumed: missed fires follow each task's misfire policy");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn pause(settings: &Settings, args: PauseArgs) -> anyhow::Result<ExitCode> {
    set_pause(settings, true, args.reason).await
}

pub(crate) async fn resume(settings: &Settings, args: ResumeArgs) -> anyhow::Result<ExitCode> {
    set_pause(settings, false, args.reason).await
}

pub(crate) async fn audit(settings: &Settings, args: AuditArgs) -> anyhow::Result<ExitCode> {
    if args.limit == 0 {
        anyhow::bail!(crate::cli::InvalidInput(
            "--limit 0 shows nothing; give at least 1".to_owned()
        ));
    }
    let db = open_db(settings).await?;
    let events = store::list_audit(
        &db,
        &store::AuditFilter {
            target: args.target,
            actor: args.actor,
            action: None,
            before_id: None,
            limit: args.limit,
        },
    )
    .await?;
    if args.json {
        let list: Vec<serde_json::Value> = events.iter().map(store::audit_json).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(["AT", "ACTOR", "ACTION", "TARGET", "REASON"]);
    for e in &events {
        t.add_row([
            scheduler_core::rfc3339(e.at),
            e.actor.clone(),
            e.action.clone(),
            clip(&e.target, 60),
            clip(e.reason.as_deref().unwrap_or("-"), 60),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
