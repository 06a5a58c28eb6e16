//! The PersistenceActor: every write of run state goes through it.
//!
//! Claims are answered at once (a fire must not run before its row exists). Everything else
//! (outcomes, skipped fires, task status fields, heartbeats) is queued and written in batches.
//! If the database is unreachable the queue is kept (bounded, with its size in the metrics
//! and the logs) and retried with backoff; `Flush` writes it all out at shutdown. Nothing is
//! dropped silently: writes that do not fit in the bound are counted and logged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use entity::task_run::{self, RunStatus};
use sea_orm::DatabaseConnection;

use crate::metrics::{ActorMetrics, Metrics};
use crate::store::{self, ClaimOutcome, FinishedRun, StoreError, TaskState};

/// Insert a fire's `running` row; says whether this node now owns the fire.
#[derive(Debug, Message)]
#[rtype(result = "Result<ClaimOutcome, StoreError>")]
pub struct ClaimRun {
    /// The row to insert.
    pub run: task_run::Model,
    /// Refuse (as `skipped_overlap`) while another fire of the task runs anywhere.
    pub forbid_overlap: bool,
}

/// A run ended (written only while the row is still this attempt's).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordFinish(pub FinishedRun);

/// A fire that did not run (`skipped_overlap`, `misfired`), as a finished row.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordSkipped(pub task_run::Model);

/// New values for a task's status fields; later ones for the same task replace earlier ones.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordTaskState {
    /// Task.
    pub task: String,
    /// The last fire processed and its status.
    pub last: Option<(DateTime<Utc>, RunStatus)>,
    /// The next fire (`Some(None)`: there is none).
    pub next: Option<Option<DateTime<Utc>>>,
}

/// This node is alive.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Heartbeat;

/// Write everything queued now, retrying until `deadline`; returns how many writes remain.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct Flush {
    /// Give up after this long.
    pub within: Duration,
}

#[derive(Debug, Clone)]
enum Write {
    Finish(FinishedRun),
    Skipped(task_run::Model),
}

/// Writes queued per flush at most.
const BATCH: usize = 512;
/// How often the queue is looked at.
const FLUSH_TICK: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Owns the database connection for writes.
pub struct PersistenceActor {
    db: DatabaseConnection,
    node_id: String,
    queue: VecDeque<Write>,
    states: BTreeMap<String, TaskState>,
    heartbeat_due: bool,
    heartbeat_every: Option<Duration>,
    bound: usize,
    flushing: bool,
    /// A copy of the batch being written, restored if the actor restarts meanwhile.
    in_flight: Option<(Vec<Write>, Vec<TaskState>)>,
    backoff: Duration,
    retry_at: Option<Instant>,
    metrics: Arc<Metrics>,
    actor_metrics: Arc<ActorMetrics>,
}

impl PersistenceActor {
    /// A persistence actor writing to `db`, keeping at most `bound` writes while it is down.
    pub fn new(
        db: DatabaseConnection,
        node_id: String,
        bound: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let actor_metrics = metrics.actor("PersistenceActor");
        PersistenceActor {
            db,
            node_id,
            queue: VecDeque::new(),
            states: BTreeMap::new(),
            heartbeat_due: false,
            heartbeat_every: None,
            bound,
            flushing: false,
            in_flight: None,
            backoff: Duration::ZERO,
            retry_at: None,
            metrics,
            actor_metrics,
        }
    }

    /// Writes this node's heartbeat every `every`.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat_every = Some(every);
        self
    }

    fn buffered(&self) -> usize {
        let in_flight = self
            .in_flight
            .as_ref()
            .map_or(0, |(b, s)| b.len() + s.len());
        self.queue.len() + self.states.len() + in_flight
    }

    fn push(&mut self, write: Write) {
        if self.queue.len() >= self.bound {
            self.metrics.dropped_writes(1);
            tracing::error!(target: "cron_task", bound = self.bound, write = ?write, "persistence buffer full; this run record is lost");
            return;
        }
        self.queue.push_back(write);
        self.metrics.buffer(self.buffered(), self.bound);
    }

    /// Starts one batch write unless one is running or a retry is not due yet.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || (self.queue.is_empty() && self.states.is_empty() && !self.heartbeat_due)
        {
            return;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.flushing = true;
        let n = self.queue.len().min(BATCH);
        let batch: Vec<Write> = self.queue.drain(..n).collect();
        let states: Vec<TaskState> = std::mem::take(&mut self.states).into_values().collect();
        let heartbeat = std::mem::take(&mut self.heartbeat_due);
        self.in_flight = Some((batch.clone(), states.clone()));
        let db = self.db.clone();
        let node_id = self.node_id.clone();
        let fut = async move {
            let result = write_batch(&db, &node_id, &batch, &states, heartbeat).await;
            (result, batch, states, heartbeat)
        };
        ctx.spawn(fut.into_actor(self).map(|(result, batch, states, heartbeat), act, _ctx| {
            act.flushing = false;
            act.in_flight = None;
            match result {
                Ok(()) => {
                    act.metrics.database_ok(true);
                    if act.backoff > Duration::ZERO {
                        tracing::info!(target: "cron_task", "database reachable again; buffered writes are being written");
                    }
                    act.backoff = Duration::ZERO;
                    act.retry_at = None;
                }
                Err(e) => {
                    act.metrics.database_ok(false);
                    // Put everything back in front, oldest first, then newer states win.
                    for w in batch.into_iter().rev() {
                        act.queue.push_front(w);
                    }
                    for s in states {
                        act.states.entry(s.task_name.clone()).or_insert(s);
                    }
                    act.heartbeat_due |= heartbeat;
                    act.backoff = (act.backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    act.retry_at = Some(Instant::now() + act.backoff);
                    tracing::warn!(target: "cron_task", error = %e, buffered = act.buffered(), bound = act.bound, retry_in_ms = act.backoff.as_millis() as u64, "database write failed; keeping writes buffered");
                }
            }
            act.metrics.buffer(act.buffered(), act.bound);
        }));
    }
}

async fn write_batch(
    db: &DatabaseConnection,
    node_id: &str,
    batch: &[Write],
    states: &[TaskState],
    heartbeat: bool,
) -> Result<(), StoreError> {
    let finishes: Vec<FinishedRun> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Finish(f) => Some(f.clone()),
            Write::Skipped(_) => None,
        })
        .collect();
    for w in batch {
        if let Write::Skipped(row) = w {
            store::record_fire_outcome(db, row).await?;
        }
    }
    if !finishes.is_empty() {
        let changed = store::finish_runs(db, &finishes).await?;
        for (f, n) in finishes.iter().zip(changed) {
            if n == 0 {
                tracing::warn!(target: "cron_task", task = %f.task_name, fire_ts_ms = f.fire_ts_ms, attempt = f.attempt, status = f.status.as_str(), "outcome not written: the run row belongs to another attempt now");
            }
        }
    }
    if !states.is_empty() {
        store::update_task_states(db, states).await?;
    }
    if heartbeat {
        store::heartbeat(db, node_id, Utc::now()).await?;
    }
    Ok(())
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.actor_metrics.instances(1);
        self.metrics.buffer(self.buffered(), self.bound);
        ctx.run_interval(FLUSH_TICK, |act, ctx| act.flush(ctx));
        if let Some(every) = self.heartbeat_every {
            ctx.run_interval(every, |act, _ctx| act.heartbeat_due = true);
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.actor_metrics.instances(-1);
    }
}

impl Supervised for PersistenceActor {
    /// Buffered writes are kept; a batch that was being written when the actor stopped is
    /// written again (every write is idempotent: claims and skips do nothing on conflict,
    /// outcomes are fenced by attempt and status).
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.actor_metrics.restarted();
        if let Some((batch, states)) = self.in_flight.take() {
            for w in batch.into_iter().rev() {
                self.queue.push_front(w);
            }
            for s in states {
                self.states.entry(s.task_name.clone()).or_insert(s);
            }
        }
        self.flushing = false;
        tracing::warn!(target: "cron_task", buffered = self.buffered(), "persistence actor restarting");
    }
}

/// Stop and start again under the supervisor, keeping every buffered write.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RestartPersistence;

impl Handler<RestartPersistence> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, _msg: RestartPersistence, ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RestartPersistence>();
        ctx.stop();
    }
}

impl Handler<ClaimRun> for PersistenceActor {
    type Result = ResponseFuture<Result<ClaimOutcome, StoreError>>;

    /// Claims at once, outside the batch: the run waits for this answer.
    fn handle(&mut self, msg: ClaimRun, _ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.actor_metrics.handling::<ClaimRun>();
        let db = self.db.clone();
        Box::pin(async move { store::claim_fire(&db, &msg.run, msg.forbid_overlap).await })
    }
}

impl Handler<RecordFinish> for PersistenceActor {
    type Result = ();

    /// Queues an outcome.
    fn handle(&mut self, msg: RecordFinish, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordFinish>();
        self.push(Write::Finish(msg.0));
    }
}

impl Handler<RecordSkipped> for PersistenceActor {
    type Result = ();

    /// Queues a skipped fire.
    fn handle(&mut self, msg: RecordSkipped, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordSkipped>();
        self.push(Write::Skipped(msg.0));
    }
}

impl Handler<RecordTaskState> for PersistenceActor {
    type Result = ();

    /// Merges status fields into the pending state of the task.
    fn handle(&mut self, msg: RecordTaskState, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordTaskState>();
        let state = self
            .states
            .entry(msg.task.clone())
            .or_insert_with(|| TaskState {
                task_name: msg.task,
                last_run_at: None,
                last_status: None,
                next_run_at: None,
            });
        if let Some((at, status)) = msg.last
            && state.last_run_at.is_none_or(|prev| at >= prev)
        {
            state.last_run_at = Some(at);
            state.last_status = Some(status);
        }
        if let Some(next) = msg.next {
            state.next_run_at = Some(next);
        }
    }
}

impl Handler<Heartbeat> for PersistenceActor {
    type Result = ();

    /// Queues a heartbeat (coalesced with any pending one).
    fn handle(&mut self, _msg: Heartbeat, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<Heartbeat>();
        self.heartbeat_due = true;
    }
}

impl Handler<Flush> for PersistenceActor {
    type Result = ResponseActFuture<Self, usize>;

    /// Writes until the queue is empty or time is up.
    fn handle(&mut self, msg: Flush, ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.actor_metrics.handling::<Flush>();
        flush_until(self, ctx, Instant::now() + msg.within)
    }
}

fn flush_until(
    act: &mut PersistenceActor,
    ctx: &mut Context<PersistenceActor>,
    deadline: Instant,
) -> ResponseActFuture<PersistenceActor, usize> {
    if (act.buffered() == 0 && !act.flushing) || Instant::now() >= deadline {
        return Box::pin(actix::fut::ready(act.buffered()));
    }
    act.retry_at = None;
    act.flush(ctx);
    Box::pin(
        tokio::time::sleep(Duration::from_millis(10))
            .into_actor(act)
            .then(move |(), act, ctx| flush_until(act, ctx, deadline)),
    )
}

impl Handler<crate::metrics::GetMetrics> for PersistenceActor {
    type Result = actix::MessageResult<crate::metrics::GetMetrics>;

    /// The node's metrics.
    fn handle(
        &mut self,
        _msg: crate::metrics::GetMetrics,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let _timing = self.actor_metrics.handling::<crate::metrics::GetMetrics>();
        actix::MessageResult(self.metrics.snapshot())
    }
}
