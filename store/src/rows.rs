//! Builders of `task_run` rows, so every writer fills a row the same way: the `running` row a
//! claim inserts, and the finished row of a fire that never ran.

use chrono::{DateTime, Utc};
use entity::task_run::{self, RunStatus};

/// A fire's `running` row, as its claim inserts it. `run_id` is the claim's fencing token.
pub fn running_row(
    run_id: String,
    task: &str,
    fire_ts_ms: i64,
    attempt: i32,
    node_id: &str,
    started_at: DateTime<Utc>,
) -> task_run::Model {
    task_run::Model {
        id: 0,
        run_id,
        task_name: task.to_owned(),
        fire_ts_ms,
        attempt,
        node_id: node_id.to_owned(),
        status: RunStatus::Running,
        started_at,
        finished_at: None,
        duration_ms: None,
        error: None,
        output: None,
        fires: 1,
    }
}

/// A new run id (a claim's fencing token): a UUID of version 7, which begins with the time, so
/// the unique index over run ids grows at its end instead of at a random page per fire.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The finished row of a fire that did not run (`skipped_overlap`, `misfired`), with why.
pub fn not_run_row(
    task: &str,
    fire_ts_ms: i64,
    node_id: &str,
    status: RunStatus,
    why: String,
    now: DateTime<Utc>,
) -> task_run::Model {
    task_run::Model {
        status,
        finished_at: Some(now),
        duration_ms: Some(0),
        error: Some(why),
        ..running_row(new_run_id(), task, fire_ts_ms, 1, node_id, now)
    }
}
