//! One fire on its way through lock, claim, handler and record.
//!
//! The way is long and has many exits (a peer holds the lock, a peer claimed first, the
//! database fails, the node shuts down, the handler fails, times out or panics), so it is
//! split in two: [`FireRun::run`] only decides how the fire ends, as a [`FireEnd`], and
//! [`settle`] is the ONE place where an end is logged, recorded, counted and its lock released.
//! Fires the executor turns away before they start go through [`settle`] too.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskSpec};
use store::{ClaimOutcome, FinishedRun};
use tokio_util::sync::CancellationToken;

use super::{ExecutorDeps, Fire, FireReason};
use crate::events::RunEvent;
use crate::fire_event::{PASSED, fire_event};
use crate::lock::{Acquire, LockLease, Release, fire_key};
use crate::persistence::{ClaimRun, RecordFinish, RecordSkipped, RecordTaskState};
use crate::tasks::{TaskContext, TaskHandler};

/// How long a cancelled handler gets to clean up (e.g. kill its processes) before it is aborted.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

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
        RecordFinish(FinishedRun {
            task_name: spec.name.clone(),
            fire_ts_ms,
            attempt,
            run_id: run_id.to_owned(),
            status,
            finished_at: Utc::now(),
            duration_ms: duration.as_millis() as i64,
            error,
            output,
        })
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
    let record_not_run = |row: entity::task_run::Model| {
        let status = row.status;
        deps.persistence.do_send(RecordSkipped(row));
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
            record_not_run(row);
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
                    record_not_run(row);
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
            record_not_run(not_run(status, why));
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

/// One fire on its way through lock, claim, handler and record.
pub(super) struct FireRun {
    pub(super) spec: Arc<TaskSpec>,
    pub(super) handler: Arc<dyn TaskHandler>,
    pub(super) deps: Arc<ExecutorDeps>,
    pub(super) fire: Fire,
}

impl FireRun {
    /// Runs the fire to its end and settles it.
    pub(super) async fn execute(&self) {
        let (lease, end) = self.run().await;
        settle(&self.deps, &self.spec, &self.fire, lease, end);
    }

    /// Takes the lock and the claim, runs the handler on the dot, and says how it ended
    /// (with the lease, if one was taken). Decides only: [`settle`] records.
    async fn run(&self) -> (Option<LockLease>, FireEnd) {
        let deps = &self.deps;
        if deps.has_peers
            && self.fire.preclaimed_run_id.is_none()
            && deps.health.database_ok_for().is_zero()
        {
            // Taking the lock now would only keep healthier peers from running the fire.
            let why = "database writes are failing on this node; leaving the fire to peers";
            return (None, passed(why, Loudness::Warn, false));
        }
        // Lateness is bounded: a fire that comes up later than its grace is given up (and
        // recorded) instead of queueing behind the others. Alone, a node checks before the
        // lock, whose round trip would only put it further behind; in a cluster after it (a
        // peer may have the fire), and everywhere before the claim and again after it.
        if !deps.has_peers
            && let Some(end) = self.shed_if_late(None)
        {
            return (None, end);
        }
        let lease = match self.take_lock().await {
            Ok(lease) => lease,
            Err(end) => return (None, end),
        };
        if let Some(end) = self.shed_if_late(None) {
            return (Some(lease), end);
        }
        let run_id = match self.claim().await {
            Ok(run_id) => run_id,
            Err(end) => return (Some(lease), end),
        };
        if let Some(end) = self.shed_if_late(Some(&run_id)) {
            return (Some(lease), end);
        }
        let fire_at = fire_time(self.fire.fire_ts_ms);
        // Lock and claim were taken ahead of the fire time: start on the dot.
        if let Ok(wait) = (fire_at - Utc::now()).to_std() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // Not started: recorded `interrupted` below.
                () = deps.interrupt.cancelled() => {}
            }
        }
        let clock = Instant::now();
        // Interrupted, or the lock lost, while waiting for the fire time: the handler never
        // starts, and the row says why.
        let (status, error, output) = if deps.interrupt.is_cancelled() {
            let why = "interrupted by node shutdown before it started";
            (RunStatus::Interrupted, Some(why.to_owned()), None)
        } else if lease.lost.is_cancelled() {
            let why = "the fire lock was lost before the run started";
            (RunStatus::LockLost, Some(why.to_owned()), None)
        } else if self.spec.shadow.covers_on_node(fire_at, deps.shadow) {
            // Computed, claimed and recorded like any fire; only the handler does not run.
            (RunStatus::Shadow, None, None)
        } else {
            self.run_handler(&run_id, fire_at, &lease).await
        };
        let end = FireEnd::Finished {
            run_id,
            status,
            error,
            output,
            duration: clock.elapsed(),
        };
        (Some(lease), end)
    }

    /// A scheduled fire that comes up later than its task's misfire grace (at least a second,
    /// as for the scheduler's own stalls) is not run when its misfire policy would not run it
    /// either: always under `skip`; under `fire_once` when a newer fire of the task is already
    /// due (that one is the run the policy owes); never under `fire_all`. How it ends instead.
    /// Catch-up, recovery and manual fires are late by nature and always go on.
    fn shed_if_late(&self, run_id: Option<&str>) -> Option<FireEnd> {
        if self.fire.reason != FireReason::Scheduled {
            return None;
        }
        let now = Utc::now();
        let fire_at = fire_time(self.fire.fire_ts_ms);
        let late = (now - fire_at).to_std().ok()?;
        let limit = crate::scheduler::late_limit(&self.spec);
        if late <= limit {
            return None;
        }
        let superseded = || {
            self.spec
                .trigger
                .next_fire_after(fire_at)
                .is_some_and(|next| next <= now)
        };
        let shed = match self.spec.misfire {
            MisfirePolicy::Skip => true,
            MisfirePolicy::FireOnce => superseded(),
            MisfirePolicy::FireAll { .. } => false,
        };
        if !shed {
            return None;
        }
        self.deps
            .metrics
            .lag()
            .observe(late, true, &self.deps.node_id, now);
        let why = format!(
            "not run: the node was {} ms behind its schedule when this fire came up (misfire grace {} ms)",
            late.as_millis(),
            limit.as_millis()
        );
        Some(FireEnd::Shed {
            run_id: run_id.map(str::to_owned),
            why,
        })
    }

    /// The fire's lock, or how the fire ends without it.
    async fn take_lock(&self) -> Result<LockLease, FireEnd> {
        let key = fire_key(
            &self.deps.lock_prefix,
            &self.spec.name,
            self.fire.fire_ts_ms,
        );
        if let Some(run_id) = &self.fire.preclaimed_run_id {
            return self.take_lock_of_recovered_fire(key).await.ok_or_else(|| {
                let why = "the previous holder still holds the fire lock, so it may still be running; not run again";
                FireEnd::Finished {
                    run_id: run_id.clone(),
                    status: RunStatus::Abandoned,
                    error: Some(why.to_owned()),
                    output: None,
                    duration: Duration::ZERO,
                }
            });
        }
        let acquire = Acquire {
            key,
            ttl: self.spec.lock_ttl,
        };
        match self.deps.lock.send(acquire).await {
            Ok(Ok(Some(lease))) => Ok(lease),
            Ok(Ok(None)) => Err(passed(
                "fire locked by another node",
                Loudness::Quiet,
                false,
            )),
            Ok(Err(e)) => Err(passed(
                format!("could not take the fire lock ({e}); fire not run"),
                Loudness::Error,
                false,
            )),
            Err(e) => Err(passed(
                format!("lock actor unavailable ({e}); fire not run"),
                Loudness::Error,
                false,
            )),
        }
    }

    /// The fire's claim (its run id), or how the fire ends without it. A recovered fire's
    /// row was already taken over for this attempt.
    async fn claim(&self) -> Result<String, FireEnd> {
        if let Some(run_id) = &self.fire.preclaimed_run_id {
            return Ok(run_id.clone());
        }
        let (spec, deps) = (&self.spec, &self.deps);
        let run_id = store::new_run_id();
        let fire_at = fire_time(self.fire.fire_ts_ms);
        let claim = ClaimRun {
            run: store::running_row(
                run_id.clone(),
                &spec.name,
                self.fire.fire_ts_ms,
                self.fire.attempt,
                &deps.node_id,
                // Claimed ahead of its time (see `PREPARE_AHEAD`), it starts on the dot.
                Utc::now().max(fire_at),
            ),
            forbid_overlap: spec.overlap == OverlapPolicy::Forbid,
        };
        match deps.persistence.send(claim).await {
            Ok(Ok(ClaimOutcome::Claimed)) => Ok(run_id),
            Ok(Ok(ClaimOutcome::Taken)) => {
                Err(passed("fire already claimed", Loudness::Quiet, true))
            }
            Ok(Ok(ClaimOutcome::Overlap)) => Err(FireEnd::OverlapElsewhere),
            Ok(Err(e)) => Err(FireEnd::ClaimFailed {
                run_id,
                why: format!("not run: the database was unreachable when the fire was due ({e})"),
            }),
            Err(e) => Err(passed(
                format!("persistence actor unavailable ({e}); fire not run"),
                Loudness::Error,
                false,
            )),
        }
    }

    /// Starts the handler and waits for its end (or its timeout, a lost lock, a shutdown's
    /// interrupt); a handler that is cancelled gets `CANCEL_GRACE` to clean up.
    async fn run_handler(
        &self,
        run_id: &str,
        fire_at: DateTime<Utc>,
        lease: &LockLease,
    ) -> (RunStatus, Option<String>, Option<String>) {
        let spec = &self.spec;
        let deps = &self.deps;
        let cancel = CancellationToken::new();
        let ctx = TaskContext {
            task: spec.name.clone(),
            run_id: run_id.to_owned(),
            fire_time: fire_at,
            attempt: self.fire.attempt.max(1) as u32,
            node: deps.node_id.clone(),
            args: spec.handler_args.as_deref().cloned(),
            cancel: cancel.clone(),
            data: deps.app_data.clone(),
        };
        let now = Utc::now();
        let late = (now - fire_at).to_std().unwrap_or_default();
        if self.fire.reason == FireReason::Scheduled {
            deps.metrics.lateness(late);
            deps.metrics.lag().observe(late, false, &deps.node_id, now);
        }
        fire_event!(INFO, task: spec.name, run_id: run_id, fire_ts_ms: self.fire.fire_ts_ms,
            node: deps.node_id, attempt: self.fire.attempt, status: "running",
            late_ms = late.as_millis() as u64, reason = ?self.fire.reason, "run started");
        deps.events.send(|| RunEvent::RunStarted {
            task: spec.name.clone(),
            run_id: run_id.to_owned(),
            fire_time: fire_at,
            attempt: crate::events::attempt(self.fire.attempt),
        });

        let mut join = deps.handler_runtime.spawn(self.handler.run(ctx));
        let timeout = async {
            match spec.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let (status, error, output) = tokio::select! {
            joined = &mut join => match joined {
                Ok(Ok(out)) => (RunStatus::Succeeded, None, out.output),
                Ok(Err(failure)) => (RunStatus::Failed, Some(failure.message), failure.output),
                Err(e) if e.is_panic() => (RunStatus::Panicked, Some(format!("handler panicked: {}", panic_message(e.into_panic()))), None),
                Err(e) => (RunStatus::Failed, Some(format!("handler was aborted: {e}")), None),
            },
            () = timeout => (RunStatus::TimedOut, Some(format!("timed out after {} s", spec.timeout.map_or(0, |t| t.as_secs()))), None),
            () = lease.lost.cancelled() => (RunStatus::LockLost, Some("the fire lock was lost; run cancelled".to_owned()), None),
            () = deps.interrupt.cancelled() => (RunStatus::Interrupted, Some("interrupted by node shutdown".to_owned()), None),
        };
        let mut output = output;
        if status != RunStatus::Succeeded && !join.is_finished() {
            cancel.cancel();
            match tokio::time::timeout(CANCEL_GRACE, &mut join).await {
                Ok(Ok(Err(failure))) => output = output.or(failure.output),
                Ok(_) => {}
                Err(_) => join.abort(),
            }
        }
        (status, error, output)
    }

    /// A recovered fire waits for the old holder's lock to expire: a dead holder no longer
    /// renews it, so it goes within one ttl. A lock that outlives a ttl and the keep period
    /// belongs to a holder that is alive after all: the fire is not run a second time.
    /// (With the lock backend unreachable the lease comes back degraded at once, and the
    /// database claim taken over for this attempt is the guard.)
    async fn take_lock_of_recovered_fire(&self, key: String) -> Option<LockLease> {
        let deadline =
            Instant::now() + self.spec.lock_ttl + self.deps.lock_keep + Duration::from_secs(1);
        loop {
            let acquire = Acquire {
                key: key.clone(),
                ttl: self.spec.lock_ttl,
            };
            if let Ok(Ok(Some(lease))) = self.deps.lock.send(acquire).await {
                return Some(lease);
            }
            if Instant::now() >= deadline || self.deps.stopping.is_cancelled() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn passed(why: impl Into<String>, loudness: Loudness, keep_lock: bool) -> FireEnd {
    FireEnd::Passed {
        why: why.into(),
        loudness,
        keep_lock,
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_owned()
    }
}
