//! The ExecutorActor: one per task, started when the task first fires and dropped by the
//! scheduler when it has been idle for a while.
//!
//! For each fire it takes the fire lock, claims the fire's `task_run` row, runs the handler
//! on the handler runtime (never on the actor threads, so a blocking or hanging handler
//! cannot stall scheduling) with the task's timeout, panic capture and a cancellation token,
//! records the outcome and releases the lock. Nothing a handler does reaches another task.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use entity::task_run::{self, RunStatus};
use scheduler_core::{OverlapPolicy, TaskSpec, rfc3339};
use tokio_util::sync::CancellationToken;

use crate::handler::{TaskContext, TaskHandler};
use crate::lock::{Acquire, LockActor, LockLease, Release, fire_key};
use crate::metrics::{ActorMetrics, Metered, Metrics};
use crate::persistence::{
    ClaimRun, PersistenceActor, RecordFinish, RecordSkipped, RecordTaskState,
};
use crate::store::{ClaimOutcome, FinishedRun};

/// Why a fire happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireReason {
    /// Its trigger said so.
    Scheduled,
    /// A fire found in the past, kept by the misfire policy.
    CatchUp,
    /// An operator asked (`tasks run-now`, `TriggerNow`).
    Manual,
    /// A fire whose node died or was shut down mid-run, re-run here (`recover`).
    Recovery,
}

/// Run one fire of this executor's task.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Fire {
    /// Scheduled fire time, UTC epoch ms (with the task name, the fire's identity).
    pub fire_ts_ms: i64,
    /// 1, or more for a recovery re-run.
    pub attempt: i32,
    /// Why.
    pub reason: FireReason,
    /// Set for a recovered fire whose row this node already took over (as `attempt`).
    pub preclaimed_run_id: Option<String>,
}

/// A run of this executor's task ended (sent by the run to its executor).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RunEnded;

/// What executors share: where to lock, where to write, where to run handlers.
pub struct ExecutorDeps {
    /// This node.
    pub node_id: String,
    /// Prefix of lock keys.
    pub lock_prefix: String,
    /// Locks.
    pub lock: Metered<LockActor>,
    /// Writes.
    pub persistence: Metered<PersistenceActor>,
    /// Where handlers run.
    pub handler_runtime: tokio::runtime::Handle,
    /// Other nodes share the schedule (a cluster lock backend): a node whose database writes
    /// fail leaves fires to them.
    pub has_peers: bool,
    /// Cancelled when a shutdown begins: no new run starts.
    pub stopping: CancellationToken,
    /// Cancelled when a shutdown's grace period is over: running handlers are interrupted.
    pub interrupt: CancellationToken,
    /// Runs in progress on this node, all tasks together.
    pub running: Arc<AtomicUsize>,
    /// How long a finished fire's lock key is kept, so no node takes that fire again.
    pub lock_keep: Duration,
    /// Node metrics.
    pub metrics: Arc<Metrics>,
    /// Executor mailbox metrics (shared by all executors).
    pub actor_metrics: Arc<ActorMetrics>,
}

/// What the scheduler can see of an executor without a message.
#[derive(Debug, Default)]
pub struct ExecutorState {
    /// Runs of this task in progress here.
    pub running: AtomicUsize,
    /// When it last started or finished something (UTC epoch ms).
    pub last_active_ms: AtomicI64,
}

/// Runs the fires of one task.
pub struct ExecutorActor {
    spec: Arc<TaskSpec>,
    handler: Arc<dyn TaskHandler>,
    deps: Arc<ExecutorDeps>,
    state: Arc<ExecutorState>,
    /// Catch-up fires waiting for the current run to end (overlap `forbid` runs them one
    /// after another rather than skipping them: the misfire policy already chose them).
    queued: VecDeque<Fire>,
}

impl ExecutorActor {
    /// An executor for `spec`, running `handler`.
    pub fn new(
        spec: Arc<TaskSpec>,
        handler: Arc<dyn TaskHandler>,
        deps: Arc<ExecutorDeps>,
        state: Arc<ExecutorState>,
    ) -> Self {
        ExecutorActor {
            spec,
            handler,
            deps,
            state,
            queued: VecDeque::new(),
        }
    }

    /// A fire that arrives while the node shuts down is not started. One whose row this node
    /// already took over is recorded `interrupted`, so a peer recovers it.
    fn not_started(&self, fire: &Fire) {
        match &fire.preclaimed_run_id {
            Some(run_id) => give_up_preclaimed(
                &self.deps,
                &self.spec,
                fire,
                run_id,
                RunStatus::Interrupted,
                "not started: the node is shutting down".to_owned(),
            ),
            None => {
                tracing::info!(target: "cron_task", task = %self.spec.name, fire_time = %rfc3339(fire_time(fire.fire_ts_ms)), node = %self.deps.node_id, attempt = fire.attempt, "fire not started: the node is shutting down")
            }
        }
    }

    /// Starts a fire's run; it reports `RunEnded` back when it is over.
    fn start(&mut self, fire: Fire, ctx: &mut Context<Self>) {
        // Counted before the run starts, so the next fire sees it even if it comes at once.
        self.state.running.fetch_add(1, Ordering::AcqRel);
        self.deps.running.fetch_add(1, Ordering::AcqRel);
        let run = FireRun {
            spec: self.spec.clone(),
            handler: self.handler.clone(),
            deps: self.deps.clone(),
            fire,
        };
        let state = self.state.clone();
        let me = Metered::new(ctx.address(), self.deps.actor_metrics.clone());
        actix::spawn(async move {
            run.execute().await;
            state.running.fetch_sub(1, Ordering::AcqRel);
            run.deps.running.fetch_sub(1, Ordering::AcqRel);
            state
                .last_active_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
            me.do_send(RunEnded);
        });
    }
}

impl Actor for ExecutorActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        self.deps.actor_metrics.instances(1);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.deps.actor_metrics.instances(-1);
    }
}

impl Handler<Fire> for ExecutorActor {
    type Result = ();

    /// Starts the fire's run unless a run of the task is still going and overlap is
    /// forbidden, in which case the fire is recorded as `skipped_overlap`.
    fn handle(&mut self, fire: Fire, ctx: &mut Self::Context) {
        let _timing = self.deps.actor_metrics.handling::<Fire>();
        if self.deps.stopping.is_cancelled() {
            self.not_started(&fire);
            return;
        }
        self.state
            .last_active_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        if self.spec.overlap == OverlapPolicy::Forbid
            && self.state.running.load(Ordering::Acquire) > 0
        {
            // Fires already decided on (catch-up, recovery) wait their turn instead.
            if matches!(fire.reason, FireReason::CatchUp | FireReason::Recovery) {
                self.queued.push_back(fire);
            } else {
                record_skip(
                    &self.deps,
                    &self.spec,
                    fire.fire_ts_ms,
                    RunStatus::SkippedOverlap,
                    "the previous run of this task is still running (overlap: forbid)".to_owned(),
                );
            }
            return;
        }
        self.start(fire, ctx);
    }
}

impl Handler<RunEnded> for ExecutorActor {
    type Result = ();

    /// Starts the next queued catch-up fire, if any.
    fn handle(&mut self, _msg: RunEnded, ctx: &mut Self::Context) {
        let _timing = self.deps.actor_metrics.handling::<RunEnded>();
        if self.deps.stopping.is_cancelled() {
            // Left for the misfire policy of the next start (or a peer's schedule).
            for fire in std::mem::take(&mut self.queued) {
                self.not_started(&fire);
            }
            return;
        }
        if self.state.running.load(Ordering::Acquire) == 0
            && let Some(fire) = self.queued.pop_front()
        {
            self.start(fire, ctx);
        }
    }
}

fn fire_time(fire_ts_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(fire_ts_ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The finished row of a fire that did not run (`skipped_overlap`, `misfired`).
pub(crate) fn not_run_row(
    task: &str,
    fire_ts_ms: i64,
    node_id: &str,
    status: RunStatus,
    why: String,
) -> task_run::Model {
    let now = Utc::now();
    task_run::Model {
        id: 0,
        run_id: uuid::Uuid::new_v4().to_string(),
        task_name: task.to_owned(),
        fire_ts_ms,
        attempt: 1,
        node_id: node_id.to_owned(),
        status,
        started_at: now,
        finished_at: Some(now),
        duration_ms: Some(0),
        error: Some(why),
        output: None,
    }
}

fn record_skip(
    deps: &ExecutorDeps,
    spec: &TaskSpec,
    fire_ts_ms: i64,
    status: RunStatus,
    why: String,
) {
    tracing::info!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_time(fire_ts_ms)), node = %deps.node_id, status = status.as_str(), "{why}");
    deps.persistence.do_send(RecordSkipped(not_run_row(
        &spec.name,
        fire_ts_ms,
        &deps.node_id,
        status,
        why,
    )));
    deps.persistence.do_send(RecordTaskState {
        task: spec.name.clone(),
        last: Some((fire_time(fire_ts_ms), status)),
        next: None,
    });
    deps.metrics.run_finished(status.as_str());
}

/// One fire on its way through lock, claim, handler and record.
struct FireRun {
    spec: Arc<TaskSpec>,
    handler: Arc<dyn TaskHandler>,
    deps: Arc<ExecutorDeps>,
    fire: Fire,
}

/// How long a cancelled handler gets to clean up (e.g. kill its processes) before it is aborted.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

impl FireRun {
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
        };
        let late = (Utc::now() - fire_at).to_std().unwrap_or_default();
        if self.fire.reason == FireReason::Scheduled {
            deps.metrics.lateness(late);
        }
        tracing::info!(target: "cron_task", task = %spec.name, run_id = %run_id, fire_time = %rfc3339(fire_at), node = %deps.node_id, attempt = self.fire.attempt, status = "running", late_ms = late.as_millis() as u64, reason = ?self.fire.reason, "run started");

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

    async fn execute(&self) {
        let spec = &self.spec;
        let deps = &self.deps;
        let fire_ts_ms = self.fire.fire_ts_ms;
        let fire_at = fire_time(fire_ts_ms);
        let key = fire_key(&deps.lock_prefix, &spec.name, fire_ts_ms);

        if deps.has_peers
            && self.fire.preclaimed_run_id.is_none()
            && deps.metrics.database_ok_for().is_zero()
        {
            // Taking the lock now would only keep healthier peers from running the fire.
            tracing::warn!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_at), node = %deps.node_id, "database writes are failing on this node; leaving the fire to peers");
            return;
        }
        let lease = if let Some(run_id) = &self.fire.preclaimed_run_id {
            match self.take_lock_of_recovered_fire(&key, fire_at).await {
                Some(lease) => lease,
                None => {
                    let why = "the previous holder still holds the fire lock, so it may still be running; not run again";
                    give_up_preclaimed(
                        deps,
                        spec,
                        &self.fire,
                        run_id,
                        RunStatus::Abandoned,
                        why.to_owned(),
                    );
                    return;
                }
            }
        } else {
            match deps
                .lock
                .send(Acquire {
                    key: key.clone(),
                    ttl: spec.lock_ttl,
                })
                .await
            {
                Ok(Ok(Some(lease))) => lease,
                Ok(Ok(None)) => {
                    tracing::debug!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_at), "fire locked by another node");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::error!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_at), error = %e, "could not take the fire lock; fire not run");
                    return;
                }
                Err(e) => {
                    tracing::error!(target: "cron_task", task = %spec.name, error = %e, "lock actor unavailable; fire not run");
                    return;
                }
            }
        };

        let run_id = match &self.fire.preclaimed_run_id {
            // A recovered fire's row was already taken over for this attempt.
            Some(id) => id.clone(),
            None => {
                let run_id = uuid::Uuid::new_v4().to_string();
                let claim = task_run::Model {
                    id: 0,
                    run_id: run_id.clone(),
                    task_name: spec.name.clone(),
                    fire_ts_ms,
                    attempt: self.fire.attempt,
                    node_id: deps.node_id.clone(),
                    status: RunStatus::Running,
                    // Claimed ahead of its time (see `PREPARE_AHEAD`), it starts on the dot.
                    started_at: Utc::now().max(fire_at),
                    finished_at: None,
                    duration_ms: None,
                    error: None,
                    output: None,
                };
                let forbid = spec.overlap == OverlapPolicy::Forbid;
                match deps
                    .persistence
                    .send(ClaimRun {
                        run: claim,
                        forbid_overlap: forbid,
                    })
                    .await
                {
                    Ok(Ok(ClaimOutcome::Claimed)) => run_id,
                    Ok(Ok(ClaimOutcome::Taken)) => {
                        tracing::debug!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_at), "fire already claimed");
                        release(deps, lease, Some(deps.lock_keep));
                        return;
                    }
                    Ok(Ok(ClaimOutcome::Overlap)) => {
                        tracing::info!(target: "cron_task", task = %spec.name, fire_time = %rfc3339(fire_at), node = %deps.node_id, status = "skipped_overlap", "a run of this task is still running elsewhere (overlap: forbid)");
                        deps.metrics
                            .run_finished(RunStatus::SkippedOverlap.as_str());
                        deps.persistence.do_send(RecordTaskState {
                            task: spec.name.clone(),
                            last: Some((fire_at, RunStatus::SkippedOverlap)),
                            next: None,
                        });
                        release(deps, lease, Some(deps.lock_keep));
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(target: "cron_task", task = %spec.name, run_id = %run_id, fire_time = %rfc3339(fire_at), node = %deps.node_id, attempt = self.fire.attempt, status = "misfired", error = %e, "could not claim the fire in the database; fire not run");
                        let why = format!(
                            "not run: the database was unreachable when the fire was due ({e})"
                        );
                        // The claim may have committed with its answer lost: settle our own row
                        // if it exists, else record the miss (a peer's claim of the fire wins).
                        deps.persistence.do_send(RecordFinish(FinishedRun {
                            task_name: spec.name.clone(),
                            fire_ts_ms,
                            attempt: self.fire.attempt,
                            run_id: run_id.clone(),
                            status: RunStatus::Misfired,
                            finished_at: Utc::now(),
                            duration_ms: 0,
                            error: Some(why.clone()),
                            output: None,
                        }));
                        record_skip(deps, spec, fire_ts_ms, RunStatus::Misfired, why);
                        release(deps, lease, None);
                        return;
                    }
                    Err(e) => {
                        tracing::error!(target: "cron_task", task = %spec.name, error = %e, "persistence actor unavailable; fire not run");
                        release(deps, lease, None);
                        return;
                    }
                }
            }
        };

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
        } else {
            self.run_handler(&run_id, fire_at, &lease).await
        };
        let duration = clock.elapsed();
        let finished_at = Utc::now();

        deps.persistence.do_send(RecordFinish(FinishedRun {
            task_name: spec.name.clone(),
            fire_ts_ms,
            attempt: self.fire.attempt,
            run_id: run_id.clone(),
            status,
            finished_at,
            duration_ms: duration.as_millis() as i64,
            error: error.clone(),
            output,
        }));
        // The outcome also sets the task's last run and status (in the persistence actor).
        deps.metrics.run_finished(status.as_str());
        // A fire that ended is kept locked for a while so a node whose clock is behind cannot
        // take it again; an interrupted or lost one is freed at once for a peer to recover.
        let keep_for = match status {
            RunStatus::Interrupted | RunStatus::LockLost => None,
            _ => Some(deps.lock_keep),
        };
        release(deps, lease, keep_for);

        let level_ok = status == RunStatus::Succeeded;
        if level_ok {
            tracing::info!(target: "cron_task", task = %spec.name, run_id = %run_id, fire_time = %rfc3339(fire_at), node = %deps.node_id, attempt = self.fire.attempt, status = status.as_str(), duration_ms = duration.as_millis() as u64, "run finished");
        } else {
            tracing::warn!(target: "cron_task", task = %spec.name, run_id = %run_id, fire_time = %rfc3339(fire_at), node = %deps.node_id, attempt = self.fire.attempt, status = status.as_str(), duration_ms = duration.as_millis() as u64, error = error.as_deref().unwrap_or(""), "run finished");
        }
    }
}

/// Gives a lease back (a degraded one has no key to give back).
fn release(deps: &ExecutorDeps, lease: LockLease, keep_for: Option<Duration>) {
    if !lease.degraded {
        deps.lock.do_send(Release {
            key: lease.key,
            value: lease.value,
            keep_for,
        });
    }
}

impl FireRun {
    /// A recovered fire waits for the old holder's lock to expire: a dead holder no longer
    /// renews it, so it goes within one ttl. A lock that outlives a ttl and the keep period
    /// belongs to a holder that is alive after all: the fire is not run a second time.
    /// (With the lock backend unreachable the lease comes back degraded at once, and the
    /// database claim taken over for this attempt is the guard.)
    async fn take_lock_of_recovered_fire(
        &self,
        key: &str,
        fire_at: DateTime<Utc>,
    ) -> Option<LockLease> {
        let deadline =
            Instant::now() + self.spec.lock_ttl + self.deps.lock_keep + Duration::from_secs(1);
        loop {
            let acquire = Acquire {
                key: key.to_owned(),
                ttl: self.spec.lock_ttl,
            };
            if let Ok(Ok(Some(lease))) = self.deps.lock.send(acquire).await {
                return Some(lease);
            }
            if Instant::now() >= deadline || self.deps.stopping.is_cancelled() {
                tracing::warn!(target: "cron_task", task = %self.spec.name, fire_time = %rfc3339(fire_at), "the previous holder still holds the fire lock; the recovered fire is not run");
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Settles the row of a preclaimed (recovered) fire that is not run after all, so it does not
/// stay `running` with nobody behind it.
fn give_up_preclaimed(
    deps: &ExecutorDeps,
    spec: &TaskSpec,
    fire: &Fire,
    run_id: &str,
    status: RunStatus,
    why: String,
) {
    tracing::warn!(target: "cron_task", task = %spec.name, run_id = %run_id, fire_time = %rfc3339(fire_time(fire.fire_ts_ms)), node = %deps.node_id, attempt = fire.attempt, status = status.as_str(), "{why}");
    deps.persistence.do_send(RecordFinish(FinishedRun {
        task_name: spec.name.clone(),
        fire_ts_ms: fire.fire_ts_ms,
        attempt: fire.attempt,
        run_id: run_id.to_owned(),
        status,
        finished_at: Utc::now(),
        duration_ms: 0,
        error: Some(why),
        output: None,
    }));
    deps.metrics.run_finished(status.as_str());
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

crate::metrics::answer_get_metrics!(ExecutorActor, actor: deps.actor_metrics, node: deps.metrics);
