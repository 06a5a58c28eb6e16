//! The ExecutorActor: one per task, started when the task first fires and dropped by the
//! scheduler when it has been idle for a while.
//!
//! For each fire it takes the fire lock, claims the fire's `task_run` row, runs the handler
//! on the handler runtime (never on the actor threads, so a blocking or hanging handler
//! cannot stall scheduling) with the task's timeout, panic capture and a cancellation token,
//! records the outcome and releases the lock. Nothing a handler does reaches another task.

mod fire_run;
mod settle;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use entity::task_run::RunStatus;
use scheduler_core::{OverlapPolicy, TaskSpec};
use tokio_util::sync::CancellationToken;

use self::fire_run::FireRun;
use self::settle::{FireEnd, Loudness, settle};
pub(crate) use self::settle::{finished_run, fire_time};
use crate::health::Health;
use crate::lock::LockActor;
use crate::metrics::{ActorMetrics, Metered, Metrics};
use crate::persistence::PersistenceActor;
use crate::tasks::TaskHandler;

/// Why a fire happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FireReason {
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
pub(crate) struct Fire {
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
pub(crate) struct RunEnded;

/// What executors share: where to lock, where to write, where to run handlers.
pub(crate) struct ExecutorDeps {
    /// This node.
    pub(crate) node_id: String,
    /// Prefix of lock keys.
    pub(crate) lock_prefix: String,
    /// Locks.
    pub(crate) lock: Metered<LockActor>,
    /// Writes.
    pub(crate) persistence: Metered<PersistenceActor>,
    /// Where handlers run.
    pub(crate) handler_runtime: tokio::runtime::Handle,
    /// Other nodes share the schedule (a cluster lock backend): a node whose database writes
    /// fail leaves fires to them.
    pub(crate) has_peers: bool,
    /// Cancelled when a shutdown begins: no new run starts.
    pub(crate) stopping: CancellationToken,
    /// Cancelled when a shutdown's grace period is over: running handlers are interrupted.
    pub(crate) interrupt: CancellationToken,
    /// Runs in progress on this node, all tasks together.
    pub(crate) running: Arc<AtomicUsize>,
    /// How long a finished fire's lock key is kept, so no node takes that fire again.
    pub(crate) lock_keep: Duration,
    /// Node metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Whether this node's database writes succeed.
    pub(crate) health: Arc<Health>,
    /// Executor mailbox metrics (shared by all executors).
    pub(crate) actor_metrics: Arc<ActorMetrics>,
    /// Run events for subscribers.
    pub(crate) events: crate::events::RunEventsSender,
    /// The application's values for handlers.
    pub(crate) app_data: crate::tasks::AppData,
    /// Every task in shadow mode on this node (`run --shadow`).
    pub(crate) shadow: bool,
}

/// What the scheduler can see of an executor without a message.
#[derive(Debug, Default)]
pub(crate) struct ExecutorState {
    /// Runs of this task in progress here.
    pub running: AtomicUsize,
    /// When it last started or finished something (UTC epoch ms).
    pub last_active_ms: AtomicI64,
}

/// Runs the fires of one task.
pub(crate) struct ExecutorActor {
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
    pub(crate) fn new(
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
        let why = "not started: the node is shutting down";
        let end = match &fire.preclaimed_run_id {
            Some(run_id) => FireEnd::Finished {
                run_id: run_id.clone(),
                status: RunStatus::Interrupted,
                error: Some(why.to_owned()),
                output: None,
                duration: Duration::ZERO,
            },
            None => FireEnd::Passed {
                why: why.to_owned(),
                loudness: Loudness::Info,
                keep_lock: false,
            },
        };
        settle(&self.deps, &self.spec, fire, None, end);
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
                let end = FireEnd::NotRun {
                    status: RunStatus::SkippedOverlap,
                    why: "the previous run of this task is still running (overlap: forbid)"
                        .to_owned(),
                };
                settle(&self.deps, &self.spec, &fire, None, end);
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

crate::metrics::answer_get_metrics!(ExecutorActor, actor: deps.actor_metrics, node: deps.metrics);
