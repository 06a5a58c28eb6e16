//! The PersistenceActor: every write of run state goes through it.
//!
//! Claims are answered at once (a fire must not run before its row exists). Everything else
//! (outcomes, skipped fires, task status fields, heartbeats) is queued and written in batches.
//! If the database is unreachable the queue is kept (bounded, with its size in the metrics
//! and the logs) and retried with backoff; `Flush` writes it all out at shutdown. Nothing is
//! dropped silently: writes that do not fit in the bound are counted and logged.

mod sheds;
mod task_states;
mod write;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use entity::task_run::{self, RunStatus};
use sea_orm::DatabaseConnection;
use store::{ClaimOutcome, FinishedRun, TaskState};

use self::sheds::PendingSheds;
use self::task_states::{PendingStates, TaskName};
use self::write::write_batch;
use crate::error::Error;
use crate::health::Health;
use crate::metrics::{ActorMetrics, Metrics};

/// Insert a fire's `running` row; says whether this node now owns the fire.
#[derive(Debug, Message)]
#[rtype(result = "Result<ClaimOutcome, Error>")]
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

/// A fire given up unclaimed because the node was behind (its own `misfired` row): the
/// task's fires given up one after another are written as one row (`sheds.rs`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordShed(pub task_run::Model);

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

/// The next fires the scheduler computed, several tasks in one message (a fire, a start-up,
/// a reload); pending values for the same task are replaced.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RecordNextFires(pub Vec<(Arc<str>, Option<DateTime<Utc>>)>);

/// This node is alive.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Heartbeat;

/// Write everything queued now; returns how many writes remain.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct Flush {
    /// Give up after this long without progress: a backlog that is being written (a node
    /// stopping after an overload) is written to the end, a database that is gone is not
    /// waited for longer than this.
    pub within: Duration,
}

/// A batch being written: outcomes and skips, and status fields. Shared with the write
/// future, not copied.
type InFlight = (Arc<Vec<Write>>, Arc<Vec<TaskState>>);

#[derive(Debug, Clone)]
enum Write {
    Finish(FinishedRun),
    Skipped(task_run::Model),
}

/// Claims written in one statement at most.
const CLAIM_BATCH: usize = 500;
/// How long a claim may wait for others to share its statement.
const CLAIM_LINGER: Duration = Duration::from_millis(1);
/// Claim statements in flight at once.
const CLAIMS_IN_FLIGHT: usize = 4;
/// New claims are refused while more than this share of the buffer's bound waits to be
/// written: the database is not keeping up with what already ran, and a run claimed now
/// would add an outcome the full buffer might have to drop (the fire is given up and
/// recorded instead, in its task's episode).
const ADMIT_BELOW: usize = 5;

type ClaimReply = tokio::sync::oneshot::Sender<Result<ClaimOutcome, Error>>;

/// How often task status fields (last run, next run) are written. They are for operators;
/// writing them on every fire would cost a row update per fire. A restart that reads a
/// last run a little stale re-claims a fire or two, and the claim turns those away.
const STATE_EVERY: Duration = Duration::from_secs(2);
/// A task's status fields are written again after this long even when its status did not
/// change (a per-second task's next and last run are then at most this stale in the table);
/// a change of status is written at the next `STATE_EVERY`.
const STATE_REFRESH: Duration = Duration::from_secs(10);

/// Writes queued per flush at most.
const BATCH: usize = 1000;
/// Batch writes in flight at once on Postgres.
const WRITES_IN_FLIGHT: usize = 3;
/// How often the queue is looked at.
const FLUSH_TICK: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Owns the database connection for writes.
pub struct PersistenceActor {
    db: DatabaseConnection,
    node_id: String,
    queue: VecDeque<Write>,
    /// Pending status fields (written every `STATE_EVERY`).
    states: PendingStates,
    /// Fires given up while behind, gathered per task into one row each.
    sheds: PendingSheds,
    heartbeat_due: bool,
    heartbeat_every: Option<Duration>,
    states_written: Instant,
    /// Flushing for shutdown: write everything now.
    draining: bool,
    /// Claims waiting to share one insert (fires due in the same instant).
    claims: Vec<(task_run::Model, ClaimReply)>,
    claim_timer: bool,
    claims_in_flight: usize,
    bound: usize,
    /// Batch writes in flight.
    flushing: usize,
    /// One of them carries status fields.
    states_in_flight: bool,
    /// A copy of the batch being written, restored if the actor restarts meanwhile.
    in_flight: HashMap<u64, InFlight>,
    next_batch: u64,
    backoff: Duration,
    retry_at: Option<Instant>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
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
        let actor_metrics = metrics.actor::<PersistenceActor>();
        PersistenceActor {
            db,
            node_id,
            queue: VecDeque::new(),
            states: PendingStates::default(),
            sheds: PendingSheds::default(),
            heartbeat_due: false,
            heartbeat_every: None,
            states_written: Instant::now(),
            draining: false,
            claims: Vec::new(),
            claim_timer: false,
            claims_in_flight: 0,
            bound,
            flushing: 0,
            states_in_flight: false,
            in_flight: HashMap::new(),
            next_batch: 0,
            backoff: Duration::ZERO,
            retry_at: None,
            metrics,
            health: Arc::new(Health::default()),
            actor_metrics,
        }
    }

    /// Reports whether writes succeed to `health` (the node's, which its scheduler and
    /// executors consult) instead of keeping it to itself.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// Sends the waiting claims as one insert, unless every slot is busy: then the claim
    /// in flight that ends first sends them.
    fn flush_claims(&mut self, ctx: &mut Context<Self>) {
        if self.claims.is_empty() {
            return;
        }
        // SQLite has one writer: concurrent claim statements only queue on its lock.
        let slots = if self.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            1
        } else {
            CLAIMS_IN_FLIGHT
        };
        if self.claims_in_flight >= slots {
            return;
        }
        let n = self.claims.len().min(CLAIM_BATCH);
        let batch: Vec<(task_run::Model, ClaimReply)> = self.claims.drain(..n).collect();
        self.claims_in_flight += 1;
        let db = self.db.clone();
        let fut = async move {
            let rows: Vec<task_run::Model> = batch.iter().map(|(r, _)| r.clone()).collect();
            match store::claim_runs(&db, &rows).await {
                Ok(inserted) => {
                    for (row, reply) in batch {
                        let outcome = if inserted.contains(&row.run_id) {
                            ClaimOutcome::Claimed
                        } else {
                            ClaimOutcome::Taken
                        };
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    // One failed statement answers every claim it carried.
                    let e = Arc::new(e);
                    for (_, reply) in batch {
                        let _ = reply.send(Err(Error::Store(e.clone())));
                    }
                }
            }
        };
        ctx.spawn(fut.into_actor(self).map(|(), act, ctx| {
            act.claims_in_flight -= 1;
            if !act.claims.is_empty() {
                act.flush_claims(ctx);
            }
        }));
        if !self.claims.is_empty() {
            self.flush_claims(ctx);
        }
    }

    /// Lets the claims wait a moment for others due in the same instant. One timer at most:
    /// under load a timer per claim would pile up in the actor's context, which polls every
    /// pending timer on every wake-up.
    fn arm_claims(&mut self, ctx: &mut Context<Self>) {
        if !self.claim_timer {
            self.claim_timer = true;
            ctx.run_later(CLAIM_LINGER, |act, ctx| {
                act.claim_timer = false;
                act.flush_claims(ctx);
            });
        }
    }

    /// Writes this node's heartbeat every `every`.
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat_every = Some(every);
        self
    }

    /// Run records waiting (what the buffer metric shows; status fields are not records and
    /// wait for their own cadence).
    fn buffered_records(&self) -> usize {
        let in_flight: usize = self.in_flight.values().map(|(b, _)| b.len()).sum();
        self.queue.len() + self.sheds.len() + in_flight
    }

    fn buffered(&self) -> usize {
        let in_flight: usize = self
            .in_flight
            .values()
            .map(|(b, s)| b.len() + s.len())
            .sum();
        self.queue.len() + self.sheds.len() + self.states.len() + in_flight
    }

    fn push(&mut self, write: Write) {
        if self.queue.len() >= self.bound {
            self.metrics.dropped_writes(1);
            tracing::error!(target: "cron_task", bound = self.bound, write = ?write, "persistence buffer full; this run record is lost");
            return;
        }
        self.queue.push_back(write);
        self.metrics.buffer(self.buffered_records(), self.bound);
    }

    /// Puts a batch that was not written back in front, oldest first; states noted since
    /// it was taken are newer and win.
    fn requeue(&mut self, batch: Arc<Vec<Write>>, states: Arc<Vec<TaskState>>) {
        for w in Arc::unwrap_or_clone(batch).into_iter().rev() {
            self.queue.push_front(w);
        }
        self.states.restore(Arc::unwrap_or_clone(states));
    }

    /// Starts batch writes while there is work, a free slot, and no retry pending. Postgres
    /// takes several at once (outcomes at 20k fires a second need more than one writer);
    /// SQLite has one writer, so one at a time.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        // Episodes of given-up fires that are old enough (all of them when draining) join
        // the queue as far as the bound has room; the rest keep gathering, so none is lost.
        let room = self.bound.saturating_sub(self.queue.len());
        for row in self.sheds.take_due(Instant::now(), self.draining, room) {
            self.queue.push_back(Write::Skipped(row));
        }
        let slots = if self.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            1
        } else {
            WRITES_IN_FLIGHT
        };
        while self.flushing < slots && self.flush_one(ctx) {}
    }

    /// Starts one batch write; `false` when there was nothing to write or a retry is not due.
    fn flush_one(&mut self, ctx: &mut Context<Self>) -> bool {
        // One batch of status fields at a time: two in flight could land out of order.
        let states_due = !self.states.is_empty()
            && !self.states_in_flight
            && (self.draining || self.states_written.elapsed() >= STATE_EVERY);
        if self.queue.is_empty() && !states_due && !self.heartbeat_due {
            return false;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        self.flushing += 1;
        let id = self.next_batch;
        self.next_batch += 1;
        let n = self.queue.len().min(BATCH);
        let batch: Arc<Vec<Write>> = Arc::new(self.queue.drain(..n).collect());
        let states: Arc<Vec<TaskState>> = if states_due {
            let now = Instant::now();
            self.states_written = now;
            let taken = if self.draining {
                self.states.take(now)
            } else {
                self.states.take_due(now, STATE_REFRESH)
            };
            // Cleared when a batch carrying states ends; an empty take carries none.
            self.states_in_flight = !taken.is_empty();
            Arc::new(taken)
        } else {
            Arc::default()
        };
        let heartbeat = std::mem::take(&mut self.heartbeat_due);
        // Shared, not copied: a first start may flush a million next fires at once.
        self.in_flight.insert(id, (batch.clone(), states.clone()));
        let db = self.db.clone();
        let node_id = self.node_id.clone();
        let fut = async move {
            let result = write_batch(&db, &node_id, &batch, &states, heartbeat).await;
            (result, batch, states, heartbeat)
        };
        ctx.spawn(fut.into_actor(self).map(move |(result, batch, states, heartbeat), act, ctx| {
            act.flushing -= 1;
            act.in_flight.remove(&id);
            if !states.is_empty() {
                act.states_in_flight = false;
            }
            let more = result.is_ok() && act.queue.len() >= BATCH;
            match result {
                Ok(()) => {
                    act.health.database_ok(true);
                    if act.backoff > Duration::ZERO {
                        tracing::info!(target: "cron_task", "database reachable again; buffered writes are being written");
                    }
                    act.backoff = Duration::ZERO;
                    act.retry_at = None;
                }
                Err(e) => {
                    act.health.database_ok(false);
                    // Put everything back in front, oldest first, then newer states win.
                    act.requeue(batch, states);
                    act.heartbeat_due |= heartbeat;
                    act.backoff = (act.backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    act.retry_at = Some(Instant::now() + act.backoff);
                    tracing::warn!(target: "cron_task", error = %e, buffered = act.buffered(), bound = act.bound, retry_in_ms = act.backoff.as_millis() as u64, "database write failed; keeping writes buffered");
                }
            }
            act.metrics.buffer(act.buffered_records(), act.bound);
            // A backlog is written batch after batch, not one batch per tick.
            if more {
                act.flush(ctx);
            }
        }));
        true
    }
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.actor_metrics.instances(1);
        self.metrics.buffer(self.buffered_records(), self.bound);
        ctx.run_interval(FLUSH_TICK, |act, ctx| act.flush(ctx));
        // After a restart: claims that were waiting go out now.
        self.flush_claims(ctx);
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
        let mut in_flight: Vec<_> = std::mem::take(&mut self.in_flight).into_iter().collect();
        // Newest batch first, so each older one ends up in front of it.
        in_flight.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        for (_, (batch, states)) in in_flight {
            self.requeue(batch, states);
        }
        self.flushing = 0;
        self.states_in_flight = false;
        // The futures that would have ended these are gone with the old context; their
        // claims were answered with an error when their reply channels dropped.
        self.claims_in_flight = 0;
        self.claim_timer = false;
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
    type Result = ResponseFuture<Result<ClaimOutcome, Error>>;

    /// Claims at once, outside the write batch: the run waits for this answer. Claims that
    /// arrive together (fires due in the same instant) share one insert.
    fn handle(&mut self, msg: ClaimRun, ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.actor_metrics.handling::<ClaimRun>();
        let waiting = self.queue.len();
        if waiting >= self.bound / ADMIT_BELOW {
            return Box::pin(async move { Err(Error::WritesBehind { waiting }) });
        }
        self.metrics.claim_attempted();
        if msg.forbid_overlap {
            // Checked against the running rows in its own statement.
            let db = self.db.clone();
            return Box::pin(async move { Ok(store::claim_fire(&db, &msg.run, true).await?) });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.claims.push((msg.run, reply));
        if self.claims.len() >= CLAIM_BATCH {
            self.flush_claims(ctx);
        } else {
            self.arm_claims(ctx);
        }
        Box::pin(async move {
            answer.await.unwrap_or(Err(Error::Restarted {
                actor: "persistence actor",
            }))
        })
    }
}

impl Handler<RecordFinish> for PersistenceActor {
    type Result = ();

    /// Queues an outcome.
    fn handle(&mut self, msg: RecordFinish, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordFinish>();
        let run = &msg.0;
        if let Some(at) = DateTime::from_timestamp_millis(run.fire_ts_ms) {
            self.states.note(
                TaskName::Borrowed(&run.task_name),
                Some((at, run.status)),
                None,
            );
        }
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

impl Handler<RecordShed> for PersistenceActor {
    type Result = ();

    /// Adds a given-up fire to its task's episode.
    fn handle(&mut self, msg: RecordShed, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordShed>();
        self.sheds.note(msg.0, Instant::now());
        self.metrics.buffer(self.buffered_records(), self.bound);
    }
}

impl Handler<RecordTaskState> for PersistenceActor {
    type Result = ();

    /// Merges status fields into the pending state of the task.
    fn handle(&mut self, msg: RecordTaskState, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordTaskState>();
        self.states
            .note(TaskName::Borrowed(&msg.task), msg.last, msg.next);
    }
}

impl Handler<RecordNextFires> for PersistenceActor {
    type Result = ();

    /// Merges each task's next fire into its pending state.
    fn handle(&mut self, msg: RecordNextFires, _ctx: &mut Self::Context) {
        let _timing = self.actor_metrics.handling::<RecordNextFires>();
        for (task, next) in msg.0 {
            self.states.note(TaskName::Shared(task), None, Some(next));
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
        self.draining = true;
        let left = self.buffered();
        flush_until(self, ctx, msg.within, left, Instant::now())
    }
}

/// Flushes until nothing is left, or until `patience` has passed since the number left last
/// went down (at `progressed`, from `left`).
fn flush_until(
    act: &mut PersistenceActor,
    ctx: &mut Context<PersistenceActor>,
    patience: Duration,
    left: usize,
    progressed: Instant,
) -> ResponseActFuture<PersistenceActor, usize> {
    let now_left = act.buffered();
    let (left, progressed) = if now_left < left {
        (now_left, Instant::now())
    } else {
        (left, progressed)
    };
    if (now_left == 0 && act.flushing == 0) || progressed.elapsed() >= patience {
        return Box::pin(actix::fut::ready(now_left));
    }
    act.retry_at = None;
    act.flush(ctx);
    Box::pin(
        tokio::time::sleep(Duration::from_millis(10))
            .into_actor(act)
            .then(move |(), act, ctx| flush_until(act, ctx, patience, left, progressed)),
    )
}

crate::metrics::answer_get_metrics!(PersistenceActor, actor: actor_metrics, node: metrics);

#[cfg(test)]
mod tests;
