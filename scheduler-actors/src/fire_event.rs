//! One macro for every log event about a fire, so each carries the fields the README
//! documents for them: `task`, `run_id`, `fire_time`, `node`, `attempt`, `status`.
//!
//! `run_id` is empty when the fire has no run record of this node's (another node has it);
//! `status` is a run status, or `passed` for such a fire. Events about a node or a task as a
//! whole (start-up, a task that cannot be scheduled) are not fire events and carry `node` or
//! `task` only.

/// Logs a fire event at `$level` (a [`tracing::Level`] constant's name) with target
/// `cron_task`: the six fire fields, then any further fields and the message as for
/// `tracing::event!`.
macro_rules! fire_event {
    ($level:ident, task: $task:expr, run_id: $run_id:expr, fire_ts_ms: $fire_ts_ms:expr,
     node: $node:expr, attempt: $attempt:expr, status: $status:expr, $($rest:tt)+) => {
        tracing::event!(
            target: "cron_task",
            tracing::Level::$level,
            task = %$task,
            run_id = %$run_id,
            fire_time = %$crate::fire_event::fire_time_text($fire_ts_ms),
            node = %$node,
            attempt = $attempt,
            status = $status,
            $($rest)+
        )
    };
}

pub(crate) use fire_event;

/// `status` of a fire event whose fire this node did not run.
pub(crate) const PASSED: &str = "passed";

/// A fire's time as logged: RFC 3339 in UTC.
pub(crate) fn fire_time_text(fire_ts_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(fire_ts_ms) {
        Some(t) => scheduler_core::rfc3339(t),
        None => format!("{fire_ts_ms} ms"),
    }
}
