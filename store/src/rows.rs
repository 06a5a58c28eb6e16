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
    }
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
        ..running_row(
            uuid::Uuid::new_v4().to_string(),
            task,
            fire_ts_ms,
            1,
            node_id,
            now,
        )
    }
}
