//! What one batch write does: the rows of fires that did not run, the outcomes (each only
//! while its claim is still the row's), the task status fields and the heartbeat, in that order.

use chrono::Utc;
use entity::task_run;
use sea_orm::DatabaseConnection;
use store::{FinishedRun, TaskState};

use super::Write;

pub(super) async fn write_batch(
    db: &DatabaseConnection,
    node_id: &str,
    batch: &[Write],
    states: &[TaskState],
    heartbeat: bool,
) -> store::Result<()> {
    let finishes: Vec<FinishedRun> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Finish(f) => Some(f.clone()),
            Write::Skipped(_) => None,
        })
        .collect();
    let skipped: Vec<task_run::Model> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Skipped(row) => Some(row.clone()),
            Write::Finish(_) => None,
        })
        .collect();
    if !skipped.is_empty() {
        store::insert_finished_runs(db, &skipped).await?;
    }
    if !finishes.is_empty() {
        let changed = store::finish_runs(db, &finishes).await?;
        if changed < finishes.len() as u64 {
            let refused = finishes.len() as u64 - changed;
            tracing::warn!(target: "cron_task", refused, tasks = ?finishes.iter().map(|f| f.task_name.as_str()).collect::<std::collections::BTreeSet<_>>(), "outcome not written for {refused} run(s): their rows belong to another claim now (taken over, or settled by a peer)");
        }
    }
    if !states.is_empty() {
        store::update_task_states(db, states).await?;
    }
    if heartbeat {
        store::heartbeat(db, node_id, Utc::now()).await?;
    }
    Ok(())
}
