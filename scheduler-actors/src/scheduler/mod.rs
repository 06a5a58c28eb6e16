//! The SchedulerActor: knows every task's next fire and sends each fire to the task's
//! executor when it is due.
//!
//! Next fires sit in a [`DueQueue`](due_queue) with ONE timer armed for the earliest; there is
//! no polling tick. A task's queued fires carry its generation, so a changed or removed task's
//! old entries are skipped when they surface instead of being searched for.
//!
//! Rooms: this file holds the messages, the actor and its handlers, and the way from the
//! queue to the executors; `task_rows` reads and validates rows, `reconcile` applies them,
//! `reaper` settles what dead nodes left, `pause` stops and resumes firing, `due_queue` is the
//! pure queue.

mod due_queue;
mod pause;
mod reaper;
mod reconcile;
mod specs;
mod task_rows;
mod task_table;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use scheduler_core::{OverlapPolicy, TaskSpec};

use self::specs::{KEEP_AHEAD, LOAD_AHEAD, SpecLoads};
use self::task_rows::Timing;
use self::task_table::TaskTable;
use sea_orm::DatabaseConnection;
use store::ChangeMark;

use self::due_queue::{DueFire, DueQueue};
pub(crate) use self::task_rows::InitialTasks;
use crate::error::Error;
use crate::events::RunEvent;
use crate::executor::{ExecutorActor, ExecutorDeps, ExecutorState, Fire, FireReason};
use crate::metrics::{ActorMetrics, Metered};
use crate::persistence::RecordNextFires;
use crate::tasks::TaskHandler;

/// Re-read the tasks from the database now.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Reload;

/// Stop firing until `Resume`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Pause;

/// Fire again; fires missed while paused go through each task's misfire policy.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Resume;

/// Fire a task now, once, in addition to its schedule.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct TriggerNow {
    /// Task name.
    pub task: String,
}

/// Stop firing for good (running fires are left to the node's shutdown).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// What the scheduler holds: per task, its next fire.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ScheduledTaskView>")]
pub struct ListScheduled;

/// A task as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScheduledTaskView {
    /// Name.
    pub name: String,
    /// Next fire, if any.
    pub next_fire: Option<DateTime<Utc>>,
    /// Runs in progress on this node.
    pub running: usize,
    /// One of cronmesh's own tasks (the `cronmesh` module, such as `cronmesh.prune_runs`).
    pub builtin: bool,
}

/// A change notice arrived over Redis pub/sub.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct ChangeNotice;

/// Executors idle this long are stopped.
pub(super) const EXECUTOR_IDLE: Duration = Duration::from_secs(30);
/// A run-now request older than this when a node starts is history, not a request.
pub(super) const RUN_NOW_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// The least lateness treated as a stall (and put through the misfire policy).
const MIN_STALL: Duration = Duration::from_secs(1);

/// How late a scheduled fire may come up and still run: the task's misfire grace, at least
/// [`MIN_STALL`] (timer jitter is not a stall). Later, the scheduler puts it through the
/// misfire policy, and an executor that gets it that late records it `misfired`.
pub(crate) fn late_limit(misfire_grace: Duration) -> Duration {
    misfire_grace.max(MIN_STALL)
}
/// Scheduled fires go to their executor this long before they are due: the lock and the
/// claim are taken ahead, and the handler starts on the dot instead of a lock round trip and
/// a claim statement late.
pub(crate) const PREPARE_AHEAD: Duration = Duration::from_millis(200);
/// How often the database is asked whether tasks changed.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// A scheduled task. Kept small: a node may hold a million, most of which fire daily and
/// never need more than this.
struct Entry {
    /// What scheduling needs, shared by the tasks that schedule alike.
    timing: Arc<Timing>,
    /// The whole spec: only for a task about to fire, firing or running (see `specs`).
    spec: Option<Arc<TaskSpec>>,
    version: i64,
    row_id: i64,
    generation: u64,
    next: Option<i64>,
    /// Only for a task that is firing, running, or has had a run-now request.
    live: Option<Box<LiveTask>>,
}

#[derive(Default)]
pub(super) struct LiveTask {
    run_now_seen: Option<DateTime<Utc>>,
    executor: Option<Metered<ExecutorActor>>,
    /// The spec the executor runs with: after a change, the executor is kept only if the
    /// spec loaded anew is the same (a run-now or a new description changes the version,
    /// not the spec).
    executor_spec: Option<Arc<TaskSpec>>,
    state: Arc<ExecutorState>,
}

impl Entry {
    fn live(&mut self) -> &mut LiveTask {
        self.live.get_or_insert_with(Box::default)
    }

    fn run_now_seen(&self) -> Option<DateTime<Utc>> {
        self.live.as_ref().and_then(|l| l.run_now_seen)
    }

    fn running(&self) -> usize {
        self.live
            .as_ref()
            .map_or(0, |l| l.state.running.load(Ordering::Relaxed))
    }
}

/// Decides when every task fires.
pub struct SchedulerActor {
    db: DatabaseConnection,
    handlers: Arc<HashMap<String, Arc<dyn TaskHandler>>>,
    deps: Arc<ExecutorDeps>,
    tasks: TaskTable<Entry>,
    due: DueQueue,
    timer: Option<(SpawnHandle, i64)>,
    next_generation: u64,
    paused_at: Option<DateTime<Utc>>,
    /// Paused by `Pause` (this node only).
    local_pause: bool,
    /// Paused cluster-wide (`cluster_state`, read with every change check).
    cluster_pause: bool,
    stopped: bool,
    mark: ChangeMark,
    reconciling: bool,
    reload_pending: bool,
    reaping: bool,
    node_timeout: Duration,
    /// Redis URL and channel of change notices, when the cluster has Redis.
    notices: Option<(String, String)>,
    initial: Option<InitialTasks>,
    /// Fires to send at the next `arm` that is not paused: catch-up fires planned at start,
    /// and run-now requests that came while paused (they run when the pause ends).
    pending: Vec<(Arc<str>, i64, FireReason)>,
    /// Next fires computed since the last `arm`, for the task status fields.
    next_fires: Vec<(Arc<str>, Option<DateTime<Utc>>)>,
    /// Specs of idle tasks to load, and fires waiting for theirs.
    loads: SpecLoads,
    metrics: Arc<ActorMetrics>,
}

impl SchedulerActor {
    /// A scheduler over the tasks in `db`, running them with `handlers`.
    pub(crate) fn new(
        db: DatabaseConnection,
        handlers: Arc<HashMap<String, Arc<dyn TaskHandler>>>,
        deps: Arc<ExecutorDeps>,
        initial: InitialTasks,
        node_timeout: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        SchedulerActor {
            db,
            handlers,
            deps,
            tasks: TaskTable::default(),
            due: DueQueue::default(),
            timer: None,
            next_generation: 1,
            paused_at: None,
            local_pause: false,
            cluster_pause: false,
            stopped: false,
            mark: ChangeMark::default(),
            reconciling: false,
            reload_pending: false,
            reaping: false,
            node_timeout,
            notices: None,
            initial: Some(initial),
            pending: Vec::new(),
            next_fires: Vec::new(),
            loads: SpecLoads::default(),
            metrics,
        }
    }

    /// Listens for change notices on `channel` of the Redis at `url`.
    pub(crate) fn with_change_notices(mut self, url: String, channel: String) -> Self {
        self.notices = Some((url, channel));
        self
    }

    /// (Re)subscribes to change notices; on failure tries again in a second.
    fn subscribe(&mut self, ctx: &mut Context<Self>) {
        let Some((url, channel)) = self.notices.clone() else {
            return;
        };
        if self.stopped {
            return;
        }
        let fut = crate::change_notices::subscribe(url, channel);
        ctx.spawn(fut.into_actor(self).map(|res, _act, ctx| match res {
            Ok(stream) => {
                ctx.add_stream(futures_util::StreamExt::map(stream, |()| ChangeNotice));
            }
            Err(e) => {
                tracing::debug!(target: "cron_task", error = %e, "change notices unavailable; relying on the reconcile");
                ctx.run_later(Duration::from_secs(1), |act, ctx| act.subscribe(ctx));
            }
        }));
    }

    fn executor(&mut self, name: &Arc<str>) -> Option<Metered<ExecutorActor>> {
        let entry = self.tasks.get_mut(name)?;
        let spec = entry.spec.clone()?;
        let handler = self.handlers.get(&spec.handler)?.clone();
        let live = entry.live();
        // Marked active now: the idle sweep must not take the executor for idle before it
        // has handled the fire on its way.
        live.state
            .last_active_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        if let Some(e) = &live.executor
            && e.connected()
        {
            return Some(e.clone());
        }
        live.executor_spec = Some(spec.clone());
        let addr = ExecutorActor::new(spec, handler, self.deps.clone(), live.state.clone()).start();
        let metered = Metered::new(addr, self.deps.actor_metrics.clone());
        live.executor = Some(metered.clone());
        Some(metered)
    }

    pub(super) fn fire(&mut self, name: &Arc<str>, fire_ts_ms: i64, reason: FireReason) {
        self.send_fire(
            name,
            Fire {
                fire_ts_ms,
                attempt: 1,
                reason,
                preclaimed_run_id: None,
            },
        );
    }

    pub(super) fn send_fire(&mut self, name: &Arc<str>, fire: Fire) {
        match self.tasks.get(name) {
            None => return,
            Some(entry) if entry.spec.is_none() => {
                // An idle task: the fire goes once its spec is loaded.
                self.loads.wait(name.clone(), fire);
                return;
            }
            Some(_) => {}
        }
        if let Some(executor) = self.executor(name) {
            self.deps.metrics.fired();
            self.deps.events.send(|| RunEvent::FirePrepared {
                task: name.to_string(),
                fire_time: crate::executor::fire_time(fire.fire_ts_ms),
                attempt: crate::events::attempt(fire.attempt),
            });
            executor.do_send(fire);
        }
    }

    /// How long before its time a fire is sent: [`PREPARE_AHEAD`] when the task's overlap
    /// is allowed, none when forbidden (a run ending within the lead must not turn the next
    /// fire into an overlap).
    fn lead(timing: &Timing) -> i64 {
        if timing.overlap == OverlapPolicy::Allow {
            PREPARE_AHEAD.as_millis() as i64
        } else {
            0
        }
    }

    /// Queues a task's next fire, to be dispatched its [`lead`](Self::lead) ahead of its
    /// time, or [`LOAD_AHEAD`] ahead when the task's spec is to be loaded first: it has none,
    /// or the fire is far enough away for the spec to be forgotten meanwhile.
    fn push(due: &mut DueQueue, entry: &Entry, at: i64, name: &Arc<str>) {
        let keeps_spec = entry.spec.is_some()
            && at - Utc::now().timestamp_millis() <= KEEP_AHEAD.num_milliseconds();
        let ahead = if keeps_spec {
            Self::lead(&entry.timing)
        } else {
            LOAD_AHEAD.as_millis() as i64
        };
        let fire = DueFire {
            task: name.clone(),
            at,
            generation: entry.generation,
        };
        due.push(fire, at - ahead);
    }

    /// Notes the task's next fire for its status fields; sent with the others in `arm`.
    fn record_next(&mut self, name: &Arc<str>) {
        if let Some(e) = self.tasks.get(name) {
            let next = e.next.and_then(DateTime::from_timestamp_millis);
            self.next_fires.push((name.clone(), next));
        }
    }

    /// Sends every due fire, schedules each task's next one, and re-arms the timer.
    fn fire_due(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        if self.paused_at.is_some() || self.stopped {
            return;
        }
        let now_ms = Utc::now().timestamp_millis();
        while let Some(DueFire {
            task: name,
            at,
            generation,
        }) = self.due.pop_due(now_ms)
        {
            let Some(entry) = self.tasks.get_mut(&name) else {
                continue;
            };
            if entry.generation != generation || entry.next != Some(at) {
                continue; // stale: the task changed since this entry was pushed
            }
            let lead = Self::lead(&entry.timing);
            if now_ms < at - lead {
                // Handed out early for an idle task: its spec is loaded meanwhile.
                if entry.spec.is_none() {
                    self.loads.want(name.clone());
                }
                let fire = DueFire {
                    task: name,
                    at,
                    generation,
                };
                self.due.push(fire, at - lead);
                continue;
            }
            // Timer jitter is not a stall: lateness counts only past the grace and a second.
            let late = now_ms - at > late_limit(entry.timing.misfire_grace).as_millis() as i64;
            let next = if late {
                // A stall (or a suspended process): what is owed goes through the misfire
                // policy, like after downtime, instead of every missed fire at once.
                let behind = Duration::from_millis((now_ms - at) as u64);
                let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_else(Utc::now);
                self.deps
                    .metrics
                    .lag()
                    .observe(behind, false, &self.deps.node_id, now);
                let timing = entry.timing.clone();
                let last = DateTime::from_timestamp_millis(at - 1);
                self.catch_up(&name, &timing, last, now)
            } else {
                DateTime::from_timestamp_millis(at)
                    .and_then(|t| entry.timing.trigger.next_fire_after(t))
                    .map(|t| t.timestamp_millis())
            };
            if let Some(entry) = self.tasks.get_mut(&name) {
                entry.next = next;
                if let Some(n) = next {
                    Self::push(&mut self.due, entry, n, &name);
                }
            }
            if !late {
                self.fire(&name, at, FireReason::Scheduled);
            }
            self.record_next(&name);
        }
        self.arm(ctx);
    }

    /// Makes sure the one timer is set for the earliest live entry.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        if self.paused_at.is_none() && !self.stopped {
            for (name, fire_ts_ms, reason) in std::mem::take(&mut self.pending) {
                self.fire(&name, fire_ts_ms, reason);
            }
        }
        self.load_specs(ctx);
        if !self.next_fires.is_empty() {
            let next_fires = std::mem::take(&mut self.next_fires);
            self.deps.persistence.do_send(RecordNextFires(next_fires));
        }
        if self.paused_at.is_some() || self.stopped {
            if let Some((handle, _)) = self.timer.take() {
                ctx.cancel_future(handle);
            }
            return;
        }
        let tasks = &self.tasks;
        let live = |name: &str, generation: u64, at: i64| {
            tasks
                .get(name)
                .is_some_and(|e| e.generation == generation && e.next == Some(at))
        };
        let Some(due) = self.due.next_dispatch(live) else {
            if let Some((handle, _)) = self.timer.take() {
                ctx.cancel_future(handle);
            }
            return;
        };
        if let Some((handle, armed_for)) = self.timer {
            if armed_for == due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = Duration::from_millis((due - Utc::now().timestamp_millis()).max(0) as u64);
        let handle = ctx.run_later(delay, |act, ctx| act.fire_due(ctx));
        self.timer = Some((handle, due));
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.instances(1);
        if let Some(initial) = self.initial.take() {
            self.apply(initial.tasks, initial.mark, true, ctx);
        }
        self.subscribe(ctx);
        ctx.run_interval(RECONCILE_EVERY, |act, ctx| {
            act.reconcile(false, ctx);
            act.reap(ctx);
            act.deps.metrics.lag().tick(&act.deps.node_id, Utc::now());
        });
        ctx.run_interval(EXECUTOR_IDLE / 3, |act, _ctx| act.sweep_idle());
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.instances(-1);
    }
}

impl Handler<Reload> for SchedulerActor {
    type Result = ();

    /// Re-reads every task now, whatever the change mark says.
    fn handle(&mut self, _msg: Reload, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Reload>();
        self.reconcile(true, ctx);
    }
}

impl Handler<Pause> for SchedulerActor {
    type Result = ();

    /// Stops firing on this node until `Resume`.
    fn handle(&mut self, _msg: Pause, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Pause>();
        self.local_pause = true;
        self.update_pause(ctx);
    }
}

impl Handler<Resume> for SchedulerActor {
    type Result = ();

    /// Fires again (unless the cluster is paused); fires missed while paused go through each
    /// task's misfire policy.
    fn handle(&mut self, _msg: Resume, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Resume>();
        self.local_pause = false;
        self.update_pause(ctx);
    }
}

impl Handler<TriggerNow> for SchedulerActor {
    type Result = Result<(), Error>;

    /// Fires the task once at the current instant.
    fn handle(&mut self, msg: TriggerNow, ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.metrics.handling::<TriggerNow>();
        if self.stopped {
            return Err(Error::ShuttingDown);
        }
        let name: Arc<str> = Arc::from(msg.task.as_str());
        if !self.tasks.contains_key(&name) {
            return Err(Error::NotScheduled { task: msg.task });
        }
        let now_ms = Utc::now().timestamp_millis();
        if self.paused_at.is_some() {
            // Kept, and run when the pause ends.
            self.pending.push((name, now_ms, FireReason::Manual));
        } else {
            self.fire(&name, now_ms, FireReason::Manual);
            self.load_specs(ctx);
        }
        Ok(())
    }
}

impl Handler<Shutdown> for SchedulerActor {
    type Result = ();

    /// Stops firing and reconciling for good.
    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Shutdown>();
        self.stopped = true;
        self.arm(ctx);
    }
}

impl Handler<ListScheduled> for SchedulerActor {
    type Result = Vec<ScheduledTaskView>;

    /// Every scheduled task and its next fire.
    fn handle(&mut self, _msg: ListScheduled, _ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.metrics.handling::<ListScheduled>();
        let mut out: Vec<ScheduledTaskView> = self
            .tasks
            .iter()
            .map(|(name, e)| ScheduledTaskView {
                name: name.to_string(),
                next_fire: e.next.and_then(DateTime::from_timestamp_millis),
                running: e.running(),
                builtin: store::is_built_in(name),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

impl StreamHandler<ChangeNotice> for SchedulerActor {
    /// Something changed somewhere: reload now.
    fn handle(&mut self, _msg: ChangeNotice, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<ChangeNotice>();
        self.reconcile(true, ctx);
    }

    /// The subscription ended (Redis went away): subscribe again, keep running.
    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.run_later(Duration::from_secs(1), |act, ctx| act.subscribe(ctx));
    }
}

crate::metrics::answer_get_metrics!(SchedulerActor, actor: metrics, node: deps.metrics);
