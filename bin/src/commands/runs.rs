//! `cronmesh runs`: run history, newest first.

use std::process::ExitCode;

use chrono::DateTime;
use entity::task_run::RunStatus;
use sea_orm::Iterable;
use store::RunFilter;

use super::open_db;
use super::output::{clip, table};
use crate::cli::InvalidInput;
use crate::settings::Settings;

/// Arguments of `cronmesh runs`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunsArgs {
    /// Only this task.
    #[arg(long)]
    task: Option<String>,
    /// Only this status (running, succeeded, failed, timed_out, ...).
    #[arg(long)]
    status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u64,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(settings: &Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let status = match &args.status {
        None => None,
        Some(s) => Some(
            RunStatus::iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| {
                    let all: Vec<&str> = RunStatus::iter().map(RunStatus::as_str).collect();
                    InvalidInput(format!("--status {s:?} is not one of {}", all.join(", ")))
                })?,
        ),
    };
    if args.limit == 0 {
        return Err(
            InvalidInput("--limit 0 would show nothing; give at least 1".to_owned()).into(),
        );
    }
    let db = open_db(settings).await?;
    let runs = store::list_runs(
        &db,
        &RunFilter {
            task: args.task.clone(),
            status,
            limit: args.limit,
            ..Default::default()
        },
    )
    .await?;
    let fire = |ms: i64| {
        DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), scheduler_core::rfc3339)
    };
    if args.json {
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run_id": r.run_id,
                    "task": r.task_name,
                    "fire_time": fire(r.fire_ts_ms),
                    "fire_ts_ms": r.fire_ts_ms,
                    "attempt": r.attempt,
                    "node": r.node_id,
                    "status": r.status.as_str(),
                    "started_at": scheduler_core::rfc3339(r.started_at),
                    "finished_at": r.finished_at.map(scheduler_core::rfc3339),
                    "duration_ms": r.duration_ms,
                    "error": r.error,
                    "output": r.output,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table([
        "FIRE TIME",
        "TASK",
        "ATTEMPT",
        "STATUS",
        "NODE",
        "DURATION",
        "ERROR",
    ]);
    // One task's runs show where it was cut over from shadow to real runs.
    let cutover_ms = match &args.task {
        Some(task) => match store::get_task(&db, task).await {
            Ok(t) => t.row.cutover_at.filter(|_| t.row.shadow),
            Err(store::StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        }
        .map(|at| at.timestamp_millis()),
        None => None,
    };
    for (i, r) in runs.iter().enumerate() {
        if let Some(cut) = cutover_ms
            && r.fire_ts_ms < cut
            && i.checked_sub(1).is_some_and(|j| runs[j].fire_ts_ms >= cut)
        {
            t.add_row([
                fire(cut),
                "── cut over: runs above are real, below shadow".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        t.add_row([
            fire(r.fire_ts_ms),
            r.task_name.clone(),
            r.attempt.to_string(),
            r.status.as_str().to_owned(),
            r.node_id.clone(),
            r.duration_ms
                .map_or_else(|| "-".to_owned(), |d| format!("{d} ms")),
            clip(r.error.as_deref().unwrap_or(""), 60),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
