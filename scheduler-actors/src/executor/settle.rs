//! How a fire ended on this node ([`FireEnd`]), and [`settle`]: the ONE place where an end is
//! logged, recorded, counted and its lock released. Fires the executor turns away before they
//! start go through it too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use scheduler_core::TaskSpec;
use store::FinishedRun;

use super::{ExecutorDeps, Fire};
use crate::events::RunEvent;
use crate::fire_event::{PASSED, fire_event};
use crate::lock::{LockLease, Release};
use crate::persistence::{RecordFinish, RecordShed, RecordSkipped, RecordTaskState};

/// How loud a fire that passes this node by is logged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loudness {
    /// Normal in a cluster (a peer had it first).
    Quiet,
    /// Worth a line in the log (a fire not started at shutdown).
    Info,
    /// Worth an operator's attention.
    Warn,
    /// Something is broken.
    Error,
}

/// How a fire ended on this node.
#[derive(Debug)]
pub(crate) enum FireEnd {
    /// The fire does not run here, and nothing is recorded here: a peer holds its lock or
    /// claimed it first, this node cannot take part (database or lock failing), or it shuts
    /// down (the fire is left to the misfire policy of the next start, or to a peer).
    Passed {
        /// Why, for the log.
        why: String,
        /// How loud.
        loudness: Loudness,
        /// Keep a held lock for the keep period (a peer runs the fire) rather than free it.
        keep_lock: bool,
    },
    /// Turned away here before its claim, recorded as a finished row of its own
    /// (`skipped_overlap`).
    NotRun {
        /// The row's status.
        status: RunStatus,
        /// Why, stored with the row.
        why: String,
    },
    /// Another fire of the task runs elsewhere in the cluster; the claim already wrote this
    /// fire's `skipped_overlap` row.
    OverlapElsewhere,
    /// The claim failed, or its answer was lost: settle our row in case it was written, and
    /// record the miss (a peer's claim of the fire wins over both).
    ClaimFailed {
        /// Our claim's run id.
        run_id: String,
        /// Why, stored with the row.
        why: String,
    },
    /// Came up later than the task's misfire grace (the node is behind its schedule): not run,
    /// recorded `misfired` with how late it was; the claimed row if there is one
    /// (`run_id`), else a row of its own. Logged quietly: the node's lag report
    /// (`metrics/lag.rs`) says it once for all of them.
    Shed {
        /// Our claim's run id, if the fire was claimed before it was given up.
        run_id: Option<String>,
        /// Why, stored with the row.
        why: String,
    },
    /// The claimed row ends with `status`.
    Finished {
        /// The claim (`task_run.run_id`).
        run_id: String,
        /// The outcome.
        status: RunStatus,
        /// Why it did not succeed.
        error: Option<String>,
        /// Output tail.
        output: Option<String>,
        /// How long the handler ran.
        duration: Duration,
    },
}

/// The end of a claimed fire's run, to be written over its row (only while the row is still
/// this attempt's).
pub(crate) fn finished_run(
    task: &str,
    fire: &Fire,
    run_id: &str,
    status: RunStatus,
    error: Option<String>,
    output: Option<String>,
    duration: Duration,
) -> RecordFinish {
    RecordFinish(FinishedRun {
        task_name: task.to_owned(),
        fire_ts_ms: fire.fire_ts_ms,
        attempt: fire.attempt,
        run_id: run_id.to_owned(),
        status,
        finished_at: Utc::now(),
        duration_ms: duration.as_millis() as i64,
        error,
        output,
    })
}

/// Records how a fire ended, counts it, logs it and gives its lock back: the one place
/// where a fire's end is settled.
pub(crate) fn settle(
    deps: &ExecutorDeps,
    spec: &TaskSpec,
    fire: &Fire,
    lease: Option<LockLease>,
    end: FireEnd,
) {
    let fire_ts_ms = fire.fire_ts_ms;
    let fire_at = fire_time(fire_ts_ms);
    let (task, node, attempt) = (&spec.name, &deps.node_id, fire.attempt);
    // Formatted inside the log macros only: they skip their fields when the event is off.
    let finished = |run_id: &str, status, error: Option<String>, output, duration: Duration| {
        finished_run(&spec.name, fire, run_id, status, error, output, duration)
    };
    // A fire that did not run gets a row saying why (logged by the caller with its run id).
    let not_run = |status: RunStatus, why: String| {
        store::not_run_row(
            &spec.name,
            fire_ts_ms,
            &deps.node_id,
            status,
            why,
            Utc::now(),
        )
    };
    // A fire given up unclaimed (`shed`) joins its task's episode: one row for a run of them.
    let record_not_run = |row: entity::task_run::Model, shed: bool| {
        let status = row.status;
        if shed {
            deps.persistence.do_send(RecordShed(row));
        } else {
            deps.persistence.do_send(RecordSkipped(row));
        }
        deps.persistence.do_send(RecordTaskState {
            task: spec.name.clone(),
            last: Some((fire_at, status)),
            next: None,
        });
    };
    // A fire that ended is kept locked for a while so a node whose clock is behind cannot
    // take it again; one that failed here, was interrupted or lost its lock is freed at once
    // for a peer to run or recover.
    let keep_lock = match &end {
        FireEnd::Passed { keep_lock, .. } => *keep_lock,
        FireEnd::OverlapElsewhere => true,
        FireEnd::Finished { status, .. } => {
            !matches!(status, RunStatus::Interrupted | RunStatus::LockLost)
        }
        // A shed fire's lock is kept like a finished one's: its `misfired` row may still be on
        // its way, and a peer must not run the fire meanwhile.
        FireEnd::Shed { .. } => true,
        FireEnd::NotRun { .. } | FireEnd::ClaimFailed { .. } => false,
    };
    let status = match end {
        FireEnd::Passed { why, loudness, .. } => {
            macro_rules! passed {
                ($level:ident) => {
                    fire_event!($level, task: task, run_id: "", fire_ts_ms: fire_ts_ms, node: node,
                        attempt: attempt, status: PASSED, "{why}")
                };
            }
            match loudness {
                Loudness::Quiet => passed!(DEBUG),
                Loudness::Info => passed!(INFO),
                Loudness::Warn => passed!(WARN),
                Loudness::Error => passed!(ERROR),
            }
            None
        }
        FireEnd::NotRun { status, why } => {
            let row = not_run(status, why);
            fire_event!(INFO, task: task, run_id: row.run_id, fire_ts_ms: fire_ts_ms, node: node,
                attempt: row.attempt, status: status.as_str(), "{}", row.error.as_deref().unwrap_or(""));
            deps.events.send(|| RunEvent::Skipped {
                task: task.clone(),
                fire_time: fire_at,
                status,
                reason: row.error.clone().unwrap_or_default(),
            });
            record_not_run(row, false);
            Some(status)
        }
        FireEnd::OverlapElsewhere => {
            let status = RunStatus::SkippedOverlap;
            let why = "a run of this task is still running elsewhere (overlap: forbid)";
            fire_event!(INFO, task: task, run_id: "", fire_ts_ms: fire_ts_ms, node: node,
                attempt: attempt, status: status.as_str(), "{why}");
            deps.events.send(|| RunEvent::Skipped {
                task: task.clone(),
                fire_time: fire_at,
                status,
                reason: why.to_owned(),
            });
            deps.persistence.do_send(RecordTaskState {
                task: spec.name.clone(),
                last: Some((fire_at, status)),
                next: None,
            });
            Some(status)
        }
        FireEnd::Shed { run_id, why } => {
            // No run event per shed fire: under overload they come by the thousand, and the
            // lag report (log lines, metrics) speaks for all of them.
            let status = RunStatus::Misfired;
            match run_id {
                Some(run_id) => {
                    fire_event!(DEBUG, task: task, run_id: run_id, fire_ts_ms: fire_ts_ms, node: node,
                        attempt: attempt, status: status.as_str(), "{why}");
                    deps.persistence.do_send(finished(
                        &run_id,
                        status,
                        Some(why),
                        None,
                        Duration::ZERO,
                    ));
                }
                None => {
                    let row = not_run(status, why);
                    fire_event!(DEBUG, task: task, run_id: row.run_id, fire_ts_ms: fire_ts_ms, node: node,
                        attempt: attempt, status: status.as_str(), "{}", row.error.as_deref().unwrap_or(""));
                    record_not_run(row, true);
                }
            }
            Some(status)
        }
        FireEnd::ClaimFailed { run_id, why } => {
            let status = RunStatus::Misfired;
            fire_event!(ERROR, task: task, run_id: run_id, fire_ts_ms: fire_ts_ms, node: node,
                attempt: attempt, status: status.as_str(), "{why}");
            deps.events.send(|| RunEvent::Skipped {
                task: task.clone(),
                fire_time: fire_at,
                status,
                reason: why.clone(),
            });
            deps.persistence.do_send(finished(
                &run_id,
                status,
                Some(why.clone()),
                None,
                Duration::ZERO,
            ));
            record_not_run(not_run(status, why), false);
            Some(status)
        }
        FireEnd::Finished {
            run_id,
            status,
            error,
            output,
            duration,
        } => {
            let duration_ms = duration.as_millis() as u64;
            if status == RunStatus::Shadow {
                fire_event!(INFO, task: task, run_id: run_id, fire_ts_ms: fire_ts_ms, node: node,
                    attempt: attempt, status: status.as_str(), "shadow fire recorded; handler not run");
            } else if status == RunStatus::Succeeded {
                fire_event!(INFO, task: task, run_id: run_id, fire_ts_ms: fire_ts_ms, node: node,
                    attempt: attempt, status: status.as_str(), duration_ms, "run finished");
            } else {
                fire_event!(WARN, task: task, run_id: run_id, fire_ts_ms: fire_ts_ms, node: node,
                    attempt: attempt, status: status.as_str(), duration_ms,
                    error = error.as_deref().unwrap_or(""), "run finished");
            }
            if status == RunStatus::LockLost {
                deps.events.send(|| RunEvent::LockLost {
                    task: task.clone(),
                    run_id: run_id.clone(),
                    fire_time: fire_at,
                });
            }
            deps.events.send(|| RunEvent::RunFinished {
                task: task.clone(),
                run_id: run_id.clone(),
                fire_time: fire_at,
                attempt: crate::events::attempt(attempt),
                status,
                duration,
                error: error.clone(),
            });
            // The outcome also sets the task's last run and status (in the persistence actor).
            deps.persistence
                .do_send(finished(&run_id, status, error, output, duration));
            Some(status)
        }
    };
    if let Some(status) = status {
        deps.metrics.run_finished(status.as_str());
    }
    // A degraded lease has no key to give back.
    if let Some(lease) = lease.filter(|l| !l.degraded) {
        deps.lock.do_send(Release {
            key: lease.key,
            value: lease.value,
            keep_for: keep_lock.then_some(deps.lock_keep),
        });
    }
}

pub(crate) fn fire_time(fire_ts_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(fire_ts_ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn passed(why: impl Into<String>, loudness: Loudness, keep_lock: bool) -> FireEnd {
    FireEnd::Passed {
        why: why.into(),
        loudness,
        keep_lock,
    }
}
