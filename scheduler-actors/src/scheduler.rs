//! The SchedulerActor: knows every task's next fire and sends each fire to the task's
//! executor when it is due.
//!
//! Next fires sit in a min-heap with ONE timer armed for the earliest; there is no polling
//! tick. A task's heap entries carry its generation, so a changed or removed task's old
//! entries are skipped when they surface instead of being searched for. Changes made
//! elsewhere (the CLI, another node) are found by a reconcile that reads two numbers from the
//! database every second and reloads only when they move.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use scheduler_core::{OverlapPolicy, TaskSpec, Trigger, plan_catch_up, rfc3339};
use sea_orm::DatabaseConnection;

use crate::executor::{ExecutorActor, ExecutorDeps, ExecutorState, Fire, FireReason, not_run_row};
use crate::handler::TaskHandler;
use crate::metrics::{ActorMetrics, Metered};
use crate::persistence::{RecordNextFires, RecordSkipped};
use crate::store::{self, ChangeMark, OrphanRun, StoreError, StoredTask};

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
#[rtype(result = "Result<(), String>")]
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
}

/// A change notice arrived over Redis pub/sub.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct ChangeNotice;

/// Executors idle this long are stopped.
const EXECUTOR_IDLE: Duration = Duration::from_secs(30);
/// A run-now request older than this when a node starts is history, not a request.
const RUN_NOW_WINDOW: chrono::Duration = chrono::Duration::minutes(10);
/// The least lateness treated as a stall (and put through the misfire policy).
const MIN_STALL: Duration = Duration::from_secs(1);
/// Scheduled fires go to their executor this long before they are due: the lock and the
/// claim are taken ahead, and the handler starts on the dot instead of a lock round trip and
/// a claim statement late.
pub(crate) const PREPARE_AHEAD: Duration = Duration::from_millis(200);
/// How often the database is asked whether tasks changed.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// A scheduled task. Kept small: a node may hold a million, most of which fire daily and
/// never need more than this.
struct Entry {
    spec: Arc<TaskSpec>,
    version: i64,
    row_id: i64,
    generation: u64,
    next: Option<i64>,
    /// Only for a task that is firing, running, or has had a run-now request.
    live: Option<Box<LiveTask>>,
}

#[derive(Default)]
struct LiveTask {
    run_now_seen: Option<DateTime<Utc>>,
    executor: Option<Metered<ExecutorActor>>,
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

/// A next fire in the heap: (dispatch ms, fire ms, generation, task); the earliest dispatch
/// first. See [`PREPARE_AHEAD`].
type HeapEntry = Reverse<(i64, i64, u64, Arc<str>)>;

/// Decides when every task fires.
pub struct SchedulerActor {
    db: DatabaseConnection,
    handlers: Arc<HashMap<String, Arc<dyn TaskHandler>>>,
    deps: Arc<ExecutorDeps>,
    tasks: HashMap<Arc<str>, Entry>,
    heap: BinaryHeap<HeapEntry>,
    timer: Option<(SpawnHandle, i64)>,
    next_generation: u64,
    paused_at: Option<DateTime<Utc>>,
    stopped: bool,
    mark: ChangeMark,
    reconciling: bool,
    reload_pending: bool,
    reaping: bool,
    node_timeout: Duration,
    /// Redis URL and channel of change notices, when the cluster has Redis.
    notices: Option<(String, String)>,
    initial: Option<InitialTasks>,
    pending_catch_up: Vec<(Arc<str>, i64)>,
    /// Next fires computed since the last `arm`, for the task status fields.
    next_fires: Vec<(Arc<str>, Option<DateTime<Utc>>)>,
    metrics: Arc<ActorMetrics>,
}

/// The tasks read at start-up, before the actor starts (so a broken database stops the node
/// before it claims to run).
pub struct InitialTasks {
    tasks: Runnable,
    mark: ChangeMark,
}

impl InitialTasks {
    /// Reads every task row (page by page) and the change mark they were read at.
    pub async fn read(
        db: &DatabaseConnection,
        handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    ) -> Result<Self, StoreError> {
        // The mark first: a change made while the pages are read moves the mark past it, and
        // the next reconcile reads again.
        let mark = store::change_mark(db).await?;
        let tasks = read_runnable(db, handlers).await?;
        Ok(InitialTasks { tasks, mark })
    }
}

/// What the scheduler keeps of a task row besides its validated spec.
pub(crate) struct RowMeta {
    id: i64,
    version: i64,
    run_now_at: Option<DateTime<Utc>>,
    last_run_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    next_run_at: Option<DateTime<Utc>>,
}

/// Stored tasks split into what this node can run and what it cannot (with the reason).
#[derive(Default)]
pub(crate) struct Runnable {
    /// Page by page, so applying them frees each page's buffer as it goes.
    pages: Vec<Vec<(RowMeta, Arc<TaskSpec>)>>,
    skipped: Vec<(String, String)>,
}

impl Runnable {
    fn len(&self) -> usize {
        self.pages.iter().map(Vec::len).sum()
    }
}

/// Rows read per page.
const TASK_PAGE: u64 = 5000;
/// Distinct triggers kept parsed while reading.
const TRIGGER_CACHE_MAX: usize = 10_000;

/// Every task row, validated page by page: only one page of full rows is in memory at a time,
/// and each distinct trigger is parsed once (a million tasks tend to share a few hundred).
async fn read_runnable(
    db: &DatabaseConnection,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
) -> Result<Runnable, StoreError> {
    let conf_names = store::conf_names(db).await?;
    let confs = store::trigger_confs(db).await?;
    let mut triggers = TriggerCache::new(&confs);
    let mut out = Runnable::default();
    let mut after_id = 0;
    loop {
        let page = store::load_task_page(db, &conf_names, after_id, TASK_PAGE).await?;
        let Some(last) = page.last() else { break };
        after_id = last.row.id;
        let full = page.len() as u64 == TASK_PAGE;
        let mut tasks = Vec::with_capacity(page.len());
        sort_runnable(page, &mut triggers, handlers, &mut tasks, &mut out.skipped);
        out.pages.push(tasks);
        if !full {
            break;
        }
    }
    Ok(out)
}

/// Parsed triggers by their JSON, and the shared trigger confs by name.
struct TriggerCache {
    confs: HashMap<String, Trigger>,
    parsed: HashMap<String, Trigger>,
}

impl TriggerCache {
    fn new(confs: &[(String, String)]) -> Self {
        TriggerCache {
            confs: confs
                .iter()
                .filter_map(|(n, j)| Trigger::from_json(j).ok().map(|t| (n.clone(), t)))
                .collect(),
            parsed: HashMap::new(),
        }
    }
}

/// Splits stored tasks into what this node can run (validated) and what it cannot.
fn sort_runnable(
    rows: Vec<StoredTask>,
    triggers: &mut TriggerCache,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    tasks: &mut Vec<(RowMeta, Arc<TaskSpec>)>,
    skipped: &mut Vec<(String, String)>,
) {
    for row in rows {
        let r = &row.row;
        if r.orphaned {
            skipped.push((
                r.name.clone(),
                "orphaned: its handler is not in any running binary".to_owned(),
            ));
            continue;
        }
        if !handlers.contains_key(&r.handler) {
            skipped.push((
                r.name.clone(),
                format!("handler {:?} is not available on this node", r.handler),
            ));
            continue;
        }
        let decl = row.decl();
        // A trigger seen before is not parsed again.
        let cached = match (&row.conf_name, &r.trigger_json) {
            (None, Some(json)) => match triggers.parsed.get(json) {
                Some(t) => Some(t.clone()),
                None => match Trigger::from_json(json) {
                    Ok(t) => {
                        // Bounded: a million distinct date triggers would gain nothing here.
                        if triggers.parsed.len() < TRIGGER_CACHE_MAX {
                            triggers.parsed.insert(json.clone(), t.clone());
                        }
                        Some(t)
                    }
                    Err(_) => None, // validation below reports it
                },
            },
            _ => None,
        };
        let validated = match cached {
            Some(trigger) => decl.validate_parsed(trigger),
            None => decl.validate(|n| triggers.confs.get(n).cloned()),
        };
        match validated {
            Ok(spec) => tasks.push((
                RowMeta {
                    id: r.id,
                    version: r.version,
                    run_now_at: r.run_now_at,
                    last_run_at: r.last_run_at,
                    updated_at: r.updated_at,
                    next_run_at: r.next_run_at,
                },
                Arc::new(spec),
            )),
            Err(errors) => skipped.push((
                r.name.clone(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

impl SchedulerActor {
    /// A scheduler over the tasks in `db`, running them with `handlers`.
    pub fn new(
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
            tasks: HashMap::new(),
            heap: BinaryHeap::new(),
            timer: None,
            next_generation: 1,
            paused_at: None,
            stopped: false,
            mark: ChangeMark::default(),
            reconciling: false,
            reload_pending: false,
            reaping: false,
            node_timeout,
            notices: None,
            initial: Some(initial),
            pending_catch_up: Vec::new(),
            next_fires: Vec::new(),
            metrics,
        }
    }

    /// Listens for change notices on `channel` of the Redis at `url`.
    pub fn with_change_notices(mut self, url: String, channel: String) -> Self {
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
        let fut = async move {
            let client = redis::Client::open(url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message())
        };
        ctx.spawn(fut.into_actor(self).map(|res, _act, ctx| match res {
            Ok(stream) => {
                ctx.add_stream(futures_util::StreamExt::map(stream, |_| ChangeNotice));
            }
            Err(e) => {
                tracing::debug!(target: "cron_task", error = %e, "change notices unavailable; relying on the reconcile");
                ctx.run_later(Duration::from_secs(1), |act, ctx| act.subscribe(ctx));
            }
        }));
    }

    /// Applies the database's view of the tasks: new and changed tasks are (re)scheduled,
    /// removed ones dropped. With `catch_up`, fires missed since each task's last fire go
    /// through its misfire policy (start-up); otherwise scheduling starts from now.
    fn apply(
        &mut self,
        runnable: Runnable,
        mark: ChangeMark,
        catch_up: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.stopped {
            return;
        }
        let now = Utc::now();
        let total = runnable.len();
        let Runnable { pages, skipped } = runnable;
        for (name, why) in &skipped {
            if self.tasks.remove(name.as_str()).is_some() || catch_up {
                tracing::warn!(target: "cron_task", task = %name, "task not scheduled on this node: {why}");
            }
        }
        let mut seen: HashSet<Arc<str>> = HashSet::with_capacity(total);
        for (row, spec) in pages.into_iter().flatten() {
            let name: Arc<str> = Arc::from(spec.name.as_str());
            seen.insert(name.clone());
            let run_now_at = row.run_now_at;
            // Row id too: a task removed and added again may get its old version back.
            let unchanged = self
                .tasks
                .get(&name)
                .is_some_and(|e| e.version == row.version && e.row_id == row.id);
            if !unchanged {
                let generation = self.next_generation;
                self.next_generation += 1;
                if !self.handlers.contains_key(&spec.handler) {
                    continue;
                }
                let previous = self.tasks.remove(&name);
                // A change that leaves the schedule alone (owner, description, run-now) keeps
                // the pending fire, so one due this very moment is not lost.
                let kept_next = previous.as_ref().and_then(|p| {
                    (p.spec.trigger == spec.trigger
                        && p.spec.enabled == spec.enabled
                        && spec.enabled)
                        .then_some(p.next)
                });
                let live = match previous {
                    // Keep a running executor only if its spec did not change in substance.
                    Some(p) if *p.spec == *spec => p.live,
                    Some(p) => p.live.map(|mut l| {
                        l.executor = None;
                        l
                    }),
                    // At start-up a request younger than the run-now window is honoured: it may
                    // have come while no node ran. Its claim keeps it to one run.
                    None => run_now_at
                        .filter(|at| now - *at > RUN_NOW_WINDOW)
                        .map(|seen| {
                            Box::new(LiveTask {
                                run_now_seen: Some(seen),
                                ..LiveTask::default()
                            })
                        }),
                };
                let next = if !spec.enabled {
                    None
                } else if let Some(next) = kept_next {
                    next
                } else if catch_up {
                    let last = row.last_run_at;
                    self.catch_up(&spec, last, now)
                } else {
                    // Added or rescheduled while running: fires since the change (a date
                    // trigger due a moment after it was added) are owed like any others.
                    let since = row.updated_at - chrono::Duration::milliseconds(1);
                    let last = row.last_run_at.map_or(since, |l| l.max(since));
                    self.catch_up(&spec, Some(last), now)
                };
                if let Some(n) = next {
                    Self::push(&mut self.heap, &spec, n, generation, &name);
                }
                self.tasks.insert(
                    name.clone(),
                    Entry {
                        spec,
                        version: row.version,
                        row_id: row.id,
                        generation,
                        next,
                        live,
                    },
                );
                // At start-up most stored next fires are already right (a restart); writing
                // a million unchanged ones would only delay the first claims.
                let stored = row.next_run_at.map(|t| t.timestamp_millis());
                if !(catch_up && stored == next) {
                    self.record_next(&name);
                }
            }
            // An operator's run-now request not handled yet.
            if let Some(at) = run_now_at
                && let Some(entry) = self.tasks.get_mut(&name)
                && entry.run_now_seen().is_none_or(|seen| at > seen)
            {
                entry.live().run_now_seen = Some(at);
                self.fire(&name, at.timestamp_millis(), FireReason::Manual);
            }
        }
        self.tasks.retain(|name, _| seen.contains(name));
        self.mark = mark;
        self.arm(ctx);
    }

    /// Start-up: run what the misfire policy keeps of the fires missed since `last`, record
    /// what it drops, and return the next fire.
    fn catch_up(
        &mut self,
        spec: &Arc<TaskSpec>,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<i64> {
        let plan = plan_catch_up(&spec.trigger, last, now, spec.misfire, spec.misfire_grace);
        if plan.skipped.count > 0 {
            let latest = plan.skipped.latest.unwrap_or(now);
            let why = format!(
                "{}{} missed fire(s) skipped by misfire policy {} (latest {})",
                if plan.skipped.saturated {
                    "at least "
                } else {
                    ""
                },
                plan.skipped.count,
                spec.misfire,
                rfc3339(latest),
            );
            tracing::info!(target: "cron_task", task = %spec.name, status = "misfired", "{why}");
            self.deps.persistence.do_send(RecordSkipped(not_run_row(
                &spec.name,
                latest.timestamp_millis(),
                &self.deps.node_id,
                RunStatus::Misfired,
                why,
            )));
        }
        for fire in &plan.run {
            let name: Arc<str> = Arc::from(spec.name.as_str());
            self.pending_catch_up.push((name, fire.timestamp_millis()));
        }
        plan.next.map(|t| t.timestamp_millis())
    }

    fn executor(&mut self, name: &Arc<str>) -> Option<Metered<ExecutorActor>> {
        let entry = self.tasks.get_mut(name)?;
        let handler = self.handlers.get(&entry.spec.handler)?.clone();
        let spec = entry.spec.clone();
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
        let addr = ExecutorActor::new(spec, handler, self.deps.clone(), live.state.clone()).start();
        let metered = Metered::new(addr, self.deps.actor_metrics.clone());
        live.executor = Some(metered.clone());
        Some(metered)
    }

    fn fire(&mut self, name: &Arc<str>, fire_ts_ms: i64, reason: FireReason) {
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

    fn send_fire(&mut self, name: &Arc<str>, fire: Fire) {
        if let Some(executor) = self.executor(name) {
            self.deps.metrics.fired();
            executor.do_send(fire);
        }
    }

    /// Declares nodes with stale heartbeats dead and settles the runs they left: `abandoned`,
    /// or re-run here as the next attempt when the task has `recover` (also for first
    /// attempts `interrupted` by a shutdown, so a peer picks them up at once).
    fn reap(&mut self, ctx: &mut Context<Self>) {
        if self.reaping || self.stopped {
            return;
        }
        // Right after this node's own database outage every peer looks dead (none could
        // write heartbeats); wait until they have had time to write one.
        let fresh_for = self.deps.metrics.database_ok_for();
        if fresh_for < self.node_timeout + Duration::from_secs(1) {
            return;
        }
        self.reaping = true;
        let db = self.db.clone();
        let me = self.deps.node_id.clone();
        let timeout = self.node_timeout;
        let fut = async move {
            let dead = store::mark_dead_nodes(&db, timeout, &me).await?;
            let orphans = store::orphan_runs(&db).await?;
            Ok::<_, StoreError>((dead, orphans))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((dead, orphans)) => {
                for node in &dead {
                    tracing::warn!(target: "cron_task", dead_node = %node, node = %act.deps.node_id, "node declared dead: no heartbeat within the node timeout");
                }
                act.settle_orphans(orphans, ctx);
            }
            Err(e) => {
                act.reaping = false;
                tracing::warn!(target: "cron_task", error = %e, "could not look for dead nodes; retrying");
            }
        }));
    }

    fn settle_orphans(&mut self, orphans: Vec<OrphanRun>, ctx: &mut Context<Self>) {
        let mut abandon = Vec::new();
        let mut take = Vec::new();
        for o in orphans {
            let rerun = o.recover && o.attempt == 1;
            if rerun && self.tasks.contains_key(o.task_name.as_str()) {
                take.push(o);
            } else if !rerun && o.status == RunStatus::Running.as_str() {
                abandon.push(o);
            }
        }
        if abandon.is_empty() && take.is_empty() {
            self.reaping = false;
            return;
        }
        let db = self.db.clone();
        let me = self.deps.node_id.clone();
        let fut = async move {
            let now = Utc::now();
            for o in &abandon {
                if store::abandon_run(&db, o, now).await? {
                    tracing::warn!(target: "cron_task", task = %o.task_name, fire_ts_ms = o.fire_ts_ms, attempt = o.attempt, node = %o.node_id, status = "abandoned", "run abandoned: its node died");
                }
            }
            let mut won = Vec::new();
            for o in take {
                let run_id = uuid::Uuid::new_v4().to_string();
                if store::take_over_run(&db, &o, &me, &run_id, now).await? {
                    won.push((o, run_id));
                }
            }
            Ok::<_, StoreError>(won)
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _ctx| {
            act.reaping = false;
            match res {
                Ok(won) => {
                    for (o, run_id) in won {
                        tracing::info!(target: "cron_task", task = %o.task_name, fire_ts_ms = o.fire_ts_ms, attempt = o.attempt + 1, node = %act.deps.node_id, "re-running a fire whose attempt {} was {} on node {}", o.attempt, o.status, o.node_id);
                        let name: Arc<str> = Arc::from(o.task_name.as_str());
                        act.send_fire(&name, Fire {
                            fire_ts_ms: o.fire_ts_ms,
                            attempt: o.attempt + 1,
                            reason: FireReason::Recovery,
                            preclaimed_run_id: Some(run_id),
                        });
                    }
                }
                Err(e) => tracing::warn!(target: "cron_task", error = %e, "could not settle runs of dead nodes; retrying"),
            }
        }));
    }

    /// Puts a task's next fire in the heap, to be dispatched [`PREPARE_AHEAD`] of its time
    /// when its overlap is allowed, at its time when forbidden (a run ending within the lead
    /// must not turn the next fire into an overlap).
    fn push(
        heap: &mut BinaryHeap<HeapEntry>,
        spec: &TaskSpec,
        at: i64,
        generation: u64,
        name: &Arc<str>,
    ) {
        let due = if spec.overlap == OverlapPolicy::Allow {
            at - PREPARE_AHEAD.as_millis() as i64
        } else {
            at
        };
        heap.push(Reverse((due, at, generation, name.clone())));
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
        while let Some(Reverse((due, at, generation, name))) = self.heap.peek().cloned() {
            if due > now_ms {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.tasks.get_mut(&name) else {
                continue;
            };
            if entry.generation != generation || entry.next != Some(at) {
                continue; // stale: the task changed since this entry was pushed
            }
            // Timer jitter is not a stall: lateness counts only past the grace and a second.
            let stall = entry.spec.misfire_grace.max(MIN_STALL);
            let late = now_ms - at > stall.as_millis() as i64;
            let next = if late {
                // A stall (or a suspended process): what is owed goes through the misfire
                // policy, like after downtime, instead of every missed fire at once.
                let spec = entry.spec.clone();
                let last = DateTime::from_timestamp_millis(at - 1);
                let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_else(Utc::now);
                self.catch_up(&spec, last, now)
            } else {
                DateTime::from_timestamp_millis(at)
                    .and_then(|t| entry.spec.trigger.next_fire_after(t))
                    .map(|t| t.timestamp_millis())
            };
            if let Some(entry) = self.tasks.get_mut(&name) {
                entry.next = next;
                if let Some(n) = next {
                    Self::push(&mut self.heap, &entry.spec, n, generation, &name);
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
        for (name, fire_ts_ms) in std::mem::take(&mut self.pending_catch_up) {
            self.fire(&name, fire_ts_ms, FireReason::CatchUp);
        }
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
        // Drop stale entries from the top so the timer is not set for a dead one.
        while let Some(Reverse((_, at, generation, name))) = self.heap.peek() {
            let live = self
                .tasks
                .get(name)
                .is_some_and(|e| e.generation == *generation && e.next == Some(*at));
            if live {
                break;
            }
            self.heap.pop();
        }
        let Some(Reverse((due, _, _, _))) = self.heap.peek() else {
            if let Some((handle, _)) = self.timer.take() {
                ctx.cancel_future(handle);
            }
            return;
        };
        let due = *due;
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

    fn reconcile(&mut self, force: bool, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if self.reconciling {
            // Asked again while reading: read once more when this round ends.
            self.reload_pending |= force;
            return;
        }
        self.reconciling = true;
        let db = self.db.clone();
        let handlers = self.handlers.clone();
        let known = self.mark;
        let fut = async move {
            let mark = store::change_mark(&db).await?;
            if !force && mark == known {
                return Ok::<_, StoreError>(None);
            }
            let tasks = read_runnable(&db, &handlers).await?;
            Ok(Some((tasks, mark)))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.reconciling = false;
            if std::mem::take(&mut act.reload_pending) {
                act.reconcile(true, ctx);
            }
            match res {
                Ok(Some((tasks, mark))) => act.apply(tasks, mark, false, ctx),
                Ok(None) => {}
                Err(e) => tracing::warn!(target: "cron_task", error = %e, "could not read task changes; retrying"),
            }
        }));
    }

    /// Drops executors that have nothing running and have been idle for a while.
    fn stop_idle_executors(&mut self) {
        let cutoff = Utc::now().timestamp_millis() - EXECUTOR_IDLE.as_millis() as i64;
        for entry in self.tasks.values_mut() {
            let Some(live) = &mut entry.live else {
                continue;
            };
            if live.state.running.load(Ordering::Acquire) == 0
                && live.state.last_active_ms.load(Ordering::Relaxed) < cutoff
            {
                // Dropping the only address stops the actor once its mailbox is empty.
                live.executor = None;
            }
            // Nothing else holds the state (no executor, no run): the task goes back to its
            // small idle form.
            if live.executor.is_none()
                && live.run_now_seen.is_none()
                && Arc::strong_count(&live.state) == 1
            {
                entry.live = None;
            }
        }
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
        });
        ctx.run_interval(EXECUTOR_IDLE / 3, |act, _ctx| act.stop_idle_executors());
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

    /// Stops the timer; nothing fires until `Resume`.
    fn handle(&mut self, _msg: Pause, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Pause>();
        if self.paused_at.is_none() {
            self.paused_at = Some(Utc::now());
            tracing::info!(target: "cron_task", "scheduler paused");
        }
        self.arm(ctx);
    }
}

impl Handler<Resume> for SchedulerActor {
    type Result = ();

    /// Fires missed while paused go through each task's misfire policy.
    fn handle(&mut self, _msg: Resume, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Resume>();
        if self.paused_at.take().is_none() {
            return;
        }
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let overdue: Vec<Arc<str>> = self
            .tasks
            .iter()
            .filter(|(_, e)| e.next.is_some_and(|n| n <= now_ms))
            .map(|(n, _)| n.clone())
            .collect();
        for name in overdue {
            let Some(entry) = self.tasks.get(&name) else {
                continue;
            };
            let spec = entry.spec.clone();
            // Everything from the first overdue fire on is owed.
            let last = entry
                .next
                .and_then(|n| DateTime::from_timestamp_millis(n - 1));
            let next = self.catch_up(&spec, last, now);
            let generation = self.next_generation;
            self.next_generation += 1;
            if let Some(entry) = self.tasks.get_mut(&name) {
                entry.generation = generation;
                entry.next = next;
            }
            if let Some(n) = next {
                Self::push(&mut self.heap, &spec, n, generation, &name);
            }
            self.record_next(&name);
        }
        tracing::info!(target: "cron_task", "scheduler resumed");
        self.arm(ctx);
    }
}

impl Handler<TriggerNow> for SchedulerActor {
    type Result = Result<(), String>;

    /// Fires the task once at the current instant.
    fn handle(&mut self, msg: TriggerNow, _ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.metrics.handling::<TriggerNow>();
        if self.stopped {
            return Err("the scheduler is shutting down".to_owned());
        }
        let name: Arc<str> = Arc::from(msg.task.as_str());
        if !self.tasks.contains_key(&name) {
            return Err(format!(
                "no task named {:?} is scheduled on this node",
                msg.task
            ));
        }
        self.fire(&name, Utc::now().timestamp_millis(), FireReason::Manual);
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
