//! The history checker: what actually ran (an execution log every run appends a line to)
//! against what the database says and what should have run.

use std::collections::BTreeMap;
use std::path::Path;

use entity::task_run::{self, RunStatus};

/// A shell `handler_args` JSON whose run appends `task fire_time node attempt` to `log`,
/// then sleeps `sleep_secs` (may be 0).
pub fn logging_shell_args(log: &Path, sleep_secs: u32) -> String {
    let script = format!(
        "echo \"$CRONMESH_TASK $CRONMESH_FIRE_TIME $CRONMESH_NODE $CRONMESH_ATTEMPT\" >> '{}'; sleep {sleep_secs}",
        log.display()
    );
    serde_json::json!({"program": "sh", "args": ["-c", script]}).to_string()
}

/// One line of the execution log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Task.
    pub task: String,
    /// Fire time, RFC 3339.
    pub fire_time: String,
    /// Node that ran it.
    pub node: String,
    /// Attempt.
    pub attempt: u32,
}

/// Every execution logged so far.
pub fn executions(log: &Path) -> Vec<Execution> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some(Execution {
                task: parts.next()?.to_owned(),
                fire_time: parts.next()?.to_owned(),
                node: parts.next()?.to_owned(),
                attempt: parts.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Executions per (task, fire time).
pub fn executions_per_fire(log: &Path) -> BTreeMap<(String, String), Vec<Execution>> {
    let mut map: BTreeMap<(String, String), Vec<Execution>> = BTreeMap::new();
    for e in executions(log) {
        map.entry((e.task.clone(), e.fire_time.clone()))
            .or_default()
            .push(e);
    }
    map
}

/// Asserts: no fire executed twice; every expected fire executed once and has exactly one
/// `succeeded` row; no row says succeeded for a fire that did not execute.
pub fn assert_exactly_once(log: &Path, runs: &[task_run::Model], expected: &[(String, String)]) {
    let per_fire = executions_per_fire(log);
    for (key, execs) in &per_fire {
        assert_eq!(
            execs.len(),
            1,
            "{key:?} executed {} times: {execs:?}",
            execs.len()
        );
    }
    let rows: BTreeMap<(String, String), &task_run::Model> = runs
        .iter()
        .map(|r| {
            let fire = chrono::DateTime::from_timestamp_millis(r.fire_ts_ms)
                .map(scheduler_core::rfc3339)
                .unwrap_or_default();
            ((r.task_name.clone(), fire), r)
        })
        .collect();
    for key in expected {
        assert!(
            per_fire.contains_key(key),
            "expected fire {key:?} never executed"
        );
        let row = rows
            .get(key)
            .unwrap_or_else(|| panic!("expected fire {key:?} has no run row"));
        assert_eq!(row.status, RunStatus::Succeeded, "{key:?}: {row:?}");
    }
    for (key, row) in &rows {
        if row.status == RunStatus::Succeeded {
            assert!(
                per_fire.contains_key(key),
                "row says {key:?} succeeded but it never executed"
            );
        }
    }
}
