//! Metrics of a node: every actor's mailbox (`actor.rs`), fires, runs by status, fire
//! lateness and the persistence buffer. Everything is readable as a [`MetricsSnapshot`] (for
//! `GetMetrics`, `/api/actors` and `cronmesh inspect`) or as Prometheus text (`/metrics`).
//!
//! Metrics only report; nothing here decides what a node does (that is the node's health, `health.rs`).

mod actor;
mod histogram;
mod lag;
mod prometheus;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

pub(crate) use self::actor::ActorMetrics;
pub(crate) use self::actor::type_label;
pub use self::actor::{ActorSnapshot, MessageSnapshot, Metered};
pub use self::histogram::Histogram;
use self::histogram::LATENESS_BUCKETS;
pub(crate) use self::lag::Lag;

/// Every actor answers it with the node's metrics (its own mailbox among them).
#[derive(Debug, actix::Message)]
#[rtype(result = "MetricsSnapshot")]
pub struct GetMetrics;

/// Implements `Handler<GetMetrics>` for an actor: times the message on the actor's own
/// metrics (`self.<actor>`) and answers with a snapshot of the node's (`self.<node>`).
macro_rules! answer_get_metrics {
    ($actor:ty, actor: $($am:ident).+, node: $($nm:ident).+) => {
        impl actix::Handler<$crate::metrics::GetMetrics> for $actor {
            type Result = actix::MessageResult<$crate::metrics::GetMetrics>;

            /// The node's metrics.
            fn handle(
                &mut self,
                _msg: $crate::metrics::GetMetrics,
                _ctx: &mut Self::Context,
            ) -> Self::Result {
                let _timing = self.$($am).+.handling::<$crate::metrics::GetMetrics>();
                actix::MessageResult(self.$($nm).+.snapshot())
            }
        }
    };
}
pub(crate) use answer_get_metrics;

/// Scheduler-level counters: fires, runs by status, lateness, persistence buffer.
#[derive(Debug)]
pub struct Metrics {
    actors: Mutex<BTreeMap<&'static str, Arc<ActorMetrics>>>,
    fires: AtomicU64,
    claims_attempted: AtomicU64,
    runs: Mutex<BTreeMap<&'static str, u64>>,
    lateness: Mutex<Histogram>,
    buffered: AtomicI64,
    buffer_bound: AtomicI64,
    dropped_writes: AtomicU64,
    degraded: AtomicI64,
    alerts: Mutex<BTreeMap<&'static str, u64>>,
    lag: Lag,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            actors: Mutex::new(BTreeMap::new()),
            fires: AtomicU64::new(0),
            claims_attempted: AtomicU64::new(0),
            runs: Mutex::new(BTreeMap::new()),
            lateness: Mutex::new(Histogram::new(&LATENESS_BUCKETS)),
            buffered: AtomicI64::new(0),
            buffer_bound: AtomicI64::new(0),
            dropped_writes: AtomicU64::new(0),
            degraded: AtomicI64::new(0),
            alerts: Mutex::new(BTreeMap::new()),
            lag: Lag::default(),
        }
    }
}

impl Metrics {
    /// New, empty metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// The metrics of actor kind `A`, created on first use and named after the type.
    pub fn actor<A: ?Sized>(&self) -> Arc<ActorMetrics> {
        let name = type_label::<A>();
        self.actors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name)
            .or_insert_with(|| Arc::new(ActorMetrics::new(name)))
            .clone()
    }

    /// Counts a fire sent to an executor.
    pub fn fired(&self) {
        self.fires.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a claim this node sent to the database (won or not): with several nodes, what
    /// each fire costs the database beyond the one claim that wins.
    pub fn claim_attempted(&self) {
        self.claims_attempted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a run outcome.
    pub fn run_finished(&self, status: &'static str) {
        *self
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// Records how late a handler started.
    pub fn lateness(&self, late: Duration) {
        self.lateness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(late.as_secs_f64());
    }

    /// How far behind its schedule the node is (reported by executors, ended by the
    /// scheduler's tick).
    pub(crate) fn lag(&self) -> &Lag {
        &self.lag
    }

    /// Sets the persistence buffer level and bound.
    pub fn buffer(&self, buffered: usize, bound: usize) {
        self.buffered.store(buffered as i64, Ordering::Relaxed);
        self.buffer_bound.store(bound as i64, Ordering::Relaxed);
    }

    /// Counts writes given up because the buffer was full.
    pub fn dropped_writes(&self, n: u64) {
        self.dropped_writes.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether the node is degraded (its lock backend is unreachable).
    pub(crate) fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed) != 0
    }

    /// Counts an alert outcome (`sent`, `failed`, `retried`, `dropped`, `suppressed`,
    /// `events_missed`).
    pub fn alert(&self, outcome: &'static str) {
        *self
            .alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(outcome)
            .or_default() += 1;
    }

    /// Marks the node degraded (a backend is down) or not.
    pub fn set_degraded(&self, degraded: bool) {
        self.degraded.store(i64::from(degraded), Ordering::Relaxed);
    }

    /// Everything, as plain data.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let actors = self
            .actors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|a| a.snapshot())
            .collect();
        let lag = self.lag.snapshot();
        MetricsSnapshot {
            actors,
            schedule_behind_ms: lag.behind_ms,
            schedule_behind_since: lag.behind_since,
            fires_shed_total: lag.shed_total,
            fires_total: self.fires.load(Ordering::Relaxed),
            claims_attempted_total: self.claims_attempted.load(Ordering::Relaxed),
            runs_total: self
                .runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            fire_lateness_seconds: self
                .lateness
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            persistence_buffered: self.buffered.load(Ordering::Relaxed),
            persistence_buffer_bound: self.buffer_bound.load(Ordering::Relaxed),
            persistence_dropped_writes: self.dropped_writes.load(Ordering::Relaxed),
            degraded: self.degraded.load(Ordering::Relaxed) != 0,
            alerts_total: self
                .alerts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.snapshot().prometheus()
    }
}

fn empty_lateness() -> Histogram {
    Histogram::new(&LATENESS_BUCKETS)
}

/// All metrics of a node.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MetricsSnapshot {
    /// Per actor kind.
    pub actors: Vec<ActorSnapshot>,
    /// Fires sent to executors.
    pub fires_total: u64,
    /// Claims this node sent to the database, won or not.
    #[serde(default)]
    pub claims_attempted_total: u64,
    /// Run outcomes by status.
    pub runs_total: BTreeMap<String, u64>,
    /// Handler start minus scheduled fire time.
    #[serde(skip_deserializing, default = "empty_lateness")]
    pub fire_lateness_seconds: Histogram,
    /// Writes waiting for the database.
    pub persistence_buffered: i64,
    /// The most writes that may wait.
    pub persistence_buffer_bound: i64,
    /// Writes given up because the buffer was full.
    pub persistence_dropped_writes: u64,
    /// A backend is down and the node runs in a degraded mode.
    pub degraded: bool,
    /// Alerts by outcome: `sent`, `failed` (every attempt failed), `retried`, `dropped` (a
    /// route's queue was full), `suppressed` (throttled), `events_missed` (the alerter fell
    /// behind the run events).
    #[serde(default)]
    pub alerts_total: BTreeMap<String, u64>,
    /// How late the latest late scheduled fire was, in milliseconds, while the node is behind
    /// its schedule (0 while it keeps up).
    #[serde(default)]
    pub schedule_behind_ms: u64,
    /// When the node fell behind its schedule (`None` while it keeps up).
    #[serde(default)]
    pub schedule_behind_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Scheduled fires not run because they came up later than their task's misfire grace
    /// (each recorded `misfired`, with how late it was).
    #[serde(default)]
    pub fires_shed_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ping;
    struct TestActor;

    #[test]
    fn depth_is_received_minus_handled() {
        let m = Metrics::new();
        let a = m.actor::<TestActor>();
        a.received::<Ping>();
        a.received::<Ping>();
        drop(a.handling::<Ping>());
        let snap = m.snapshot();
        assert_eq!(snap.actors[0].mailbox_depth, 1);
        assert_eq!(snap.actors[0].messages["Ping"].handled, 1);
        let text = m.prometheus();
        assert!(
            text.contains("cronmesh_actor_mailbox_depth{actor=\"TestActor\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "cronmesh_actor_handling_seconds_count{actor=\"TestActor\",message=\"Ping\"} 1"
        ));
    }
}
