//! One fire on its way through lock, claim, handler and record.
//!
//! The way is long and has many exits (a peer holds the lock, a peer claimed first, the
//! database fails, the node shuts down, the handler fails, times out or panics), so it is
//! split in two: [`FireRun::run`] only decides how the fire ends, as a [`FireEnd`], and
//! [`settle`](super::settle::settle) (`settle.rs`) is the ONE place where an end is logged,
//! recorded, counted and its lock released.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskSpec};
use store::ClaimOutcome;
use tokio_util::sync::CancellationToken;

use super::settle::{FireEnd, Loudness, fire_time, passed, settle};
use super::{ExecutorDeps, Fire, FireReason};
use crate::events::RunEvent;
use crate::fire_event::fire_event;
use crate::lock::{Acquire, LockLease, fire_key};
use crate::persistence::ClaimRun;
use crate::tasks::{TaskContext, TaskHandler};

/// How long a cancelled handler gets to clean up (e.g. kill its processes) before it is aborted.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

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
        let limit = crate::scheduler::late_limit(self.spec.misfire_grace);
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
            Ok(Err(crate::Error::WritesBehind { waiting })) => {
                let now = Utc::now();
                let late = (now - fire_at).to_std().unwrap_or_default();
                deps.metrics.lag().observe(late, true, &deps.node_id, now);
                Err(FireEnd::Shed {
                    run_id: None,
                    why: format!(
                        "not run: the database was {waiting} writes behind on this node when the fire came up"
                    ),
                })
            }
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

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_owned()
    }
}
