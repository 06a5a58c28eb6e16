//! Mailbox and scheduler metrics.
//!
//! Every actor owns an [`ActorMetrics`]. Senders count a message as received when they put
//! it in the mailbox (through [`Metered`]); the handler counts it as handled and times it
//! with [`ActorMetrics::handling`]. The difference is the mailbox depth, which actix itself
//! does not expose. Everything is readable as a [`MetricsSnapshot`] (for `GetMetrics`,
//! `/api/actors` and `cronmesh inspect`) or as Prometheus text (`/metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message};
use serde::Serialize;

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

/// Upper bounds (seconds) of the handling-time buckets.
const HANDLING_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];
/// Upper bounds (seconds) of the fire lateness buckets.
const LATENESS_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    /// Bucket upper bounds in seconds (the last, implicit bucket is +Inf).
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more entry than `bounds`.
    pub counts: Vec<u64>,
    /// Sum of observations in seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        let i = self.bounds.partition_point(|b| *b < seconds);
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn write_prometheus(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Clone)]
struct MessageStats {
    received: u64,
    handled: u64,
    handling: Histogram,
}

impl Default for MessageStats {
    fn default() -> Self {
        MessageStats {
            received: 0,
            handled: 0,
            handling: Histogram::new(&HANDLING_BUCKETS),
        }
    }
}

/// One actor's mailbox metrics. Shared by every instance of an actor kind (for example all
/// executors), so a restarted or re-created actor keeps counting in the same place.
#[derive(Debug)]
pub struct ActorMetrics {
    name: &'static str,
    messages: Mutex<BTreeMap<&'static str, MessageStats>>,
    restarts: AtomicU64,
    instances: AtomicI64,
}

fn message_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

impl ActorMetrics {
    fn new(name: &'static str) -> Self {
        ActorMetrics {
            name,
            messages: Mutex::new(BTreeMap::new()),
            restarts: AtomicU64::new(0),
            instances: AtomicI64::new(0),
        }
    }

    fn with_stats(&self, msg: &'static str, f: impl FnOnce(&mut MessageStats)) {
        let mut map = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(msg).or_default());
    }

    /// Counts a message of type `M` as put into the mailbox.
    pub fn received<M>(&self) {
        self.with_stats(message_name::<M>(), |s| s.received += 1);
    }

    /// Starts timing the handling of a message of type `M`; the guard records it when dropped.
    pub fn handling<M>(self: &Arc<Self>) -> HandlingGuard {
        HandlingGuard {
            metrics: self.clone(),
            msg: message_name::<M>(),
            started: Instant::now(),
        }
    }

    /// Counts a restart (a supervised actor coming back after a failure).
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an instance starting (`+1`) or stopping (`-1`).
    pub fn instances(&self, delta: i64) {
        self.instances.fetch_add(delta, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ActorSnapshot {
        let map = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        let messages: BTreeMap<String, MessageSnapshot> = map
            .iter()
            .map(|(name, s)| {
                (
                    (*name).to_owned(),
                    MessageSnapshot {
                        received: s.received,
                        handled: s.handled,
                        handling_seconds: s.handling.clone(),
                    },
                )
            })
            .collect();
        let (received, handled) = messages
            .values()
            .fold((0, 0), |(r, h), m| (r + m.received, h + m.handled));
        ActorSnapshot {
            actor: self.name.to_owned(),
            instances: self.instances.load(Ordering::Relaxed),
            mailbox_depth: received.saturating_sub(handled),
            received,
            handled,
            restarts: self.restarts.load(Ordering::Relaxed),
            messages,
        }
    }
}

/// Records one handled message when dropped.
#[must_use = "the message is timed until the guard is dropped"]
pub struct HandlingGuard {
    metrics: Arc<ActorMetrics>,
    msg: &'static str,
    started: Instant,
}

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.metrics.with_stats(self.msg, |s| {
            s.handled += 1;
            s.handling.observe(elapsed);
        });
    }
}

/// An actor address that counts what it sends.
pub struct Metered<A: Actor> {
    addr: Addr<A>,
    metrics: Arc<ActorMetrics>,
}

impl<A: Actor> Clone for Metered<A> {
    fn clone(&self) -> Self {
        Metered {
            addr: self.addr.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<A: Actor> Metered<A> {
    /// Wraps an address with its actor's metrics.
    pub fn new(addr: Addr<A>, metrics: Arc<ActorMetrics>) -> Self {
        Metered { addr, metrics }
    }

    /// The plain address.
    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Whether the actor is still running.
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    /// Sends without waiting for a reply.
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.metrics.received::<M>();
        self.addr.do_send(msg);
    }

    /// Sends and waits for the reply.
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.metrics.received::<M>();
        self.addr.send(msg).await
    }
}

/// Scheduler-level counters: fires, runs by status, lateness, persistence buffer.
#[derive(Debug)]
pub struct Metrics {
    actors: Mutex<BTreeMap<&'static str, Arc<ActorMetrics>>>,
    fires: AtomicU64,
    runs: Mutex<BTreeMap<&'static str, u64>>,
    lateness: Mutex<Histogram>,
    buffered: AtomicI64,
    buffer_bound: AtomicI64,
    dropped_writes: AtomicU64,
    degraded: AtomicI64,
    /// Since when (UTC epoch ms) database writes have been succeeding; 0 while they fail.
    database_ok_since_ms: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            actors: Mutex::new(BTreeMap::new()),
            fires: AtomicU64::new(0),
            runs: Mutex::new(BTreeMap::new()),
            lateness: Mutex::new(Histogram::new(&LATENESS_BUCKETS)),
            buffered: AtomicI64::new(0),
            buffer_bound: AtomicI64::new(0),
            dropped_writes: AtomicU64::new(0),
            degraded: AtomicI64::new(0),
            database_ok_since_ms: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
        }
    }
}

impl Metrics {
    /// New, empty metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// The metrics of actor kind `name`, created on first use.
    pub fn actor(&self, name: &'static str) -> Arc<ActorMetrics> {
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

    /// Sets the persistence buffer level and bound.
    pub fn buffer(&self, buffered: usize, bound: usize) {
        self.buffered.store(buffered as i64, Ordering::Relaxed);
        self.buffer_bound.store(bound as i64, Ordering::Relaxed);
    }

    /// Counts writes given up because the buffer was full.
    pub fn dropped_writes(&self, n: u64) {
        self.dropped_writes.fetch_add(n, Ordering::Relaxed);
    }

    /// Records whether the last database write succeeded.
    pub fn database_ok(&self, ok: bool) {
        if !ok {
            self.database_ok_since_ms.store(0, Ordering::Relaxed);
        } else if self.database_ok_since_ms.load(Ordering::Relaxed) == 0 {
            self.database_ok_since_ms
                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    /// How long database writes have been succeeding without a failure (zero while failing).
    pub fn database_ok_for(&self) -> Duration {
        match self.database_ok_since_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => {
                Duration::from_millis((chrono::Utc::now().timestamp_millis() - since).max(0) as u64)
            }
        }
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
        MetricsSnapshot {
            actors,
            fires_total: self.fires.load(Ordering::Relaxed),
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
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.snapshot().prometheus()
    }
}

/// One actor kind's metrics.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ActorSnapshot {
    /// Actor kind.
    pub actor: String,
    /// Instances running now.
    pub instances: i64,
    /// Messages waiting.
    pub mailbox_depth: u64,
    /// Messages put in the mailbox.
    pub received: u64,
    /// Messages handled.
    pub handled: u64,
    /// Restarts after failures.
    pub restarts: u64,
    /// Per message type.
    pub messages: BTreeMap<String, MessageSnapshot>,
}

/// One message type's counts.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MessageSnapshot {
    /// Put in the mailbox.
    pub received: u64,
    /// Handled.
    pub handled: u64,
    /// Handling time.
    #[serde(skip_deserializing, default = "empty_handling")]
    pub handling_seconds: Histogram,
}

fn empty_handling() -> Histogram {
    Histogram::new(&HANDLING_BUCKETS)
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
}

impl MetricsSnapshot {
    /// The Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "cronmesh_actor_messages_received_total",
            "counter",
            "Messages put in an actor's mailbox.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                let _ = writeln!(
                    out,
                    "cronmesh_actor_messages_received_total{{actor=\"{}\",message=\"{m}\"}} {}",
                    a.actor, s.received
                );
            }
        }
        header(
            &mut out,
            "cronmesh_actor_messages_handled_total",
            "counter",
            "Messages an actor has handled.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                let _ = writeln!(
                    out,
                    "cronmesh_actor_messages_handled_total{{actor=\"{}\",message=\"{m}\"}} {}",
                    a.actor, s.handled
                );
            }
        }
        header(
            &mut out,
            "cronmesh_actor_mailbox_depth",
            "gauge",
            "Messages waiting in an actor's mailbox.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_mailbox_depth{{actor=\"{}\"}} {}",
                a.actor, a.mailbox_depth
            );
        }
        header(
            &mut out,
            "cronmesh_actor_instances",
            "gauge",
            "Running instances of an actor kind.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_instances{{actor=\"{}\"}} {}",
                a.actor, a.instances
            );
        }
        header(
            &mut out,
            "cronmesh_actor_restarts_total",
            "counter",
            "Restarts of a supervised actor.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_restarts_total{{actor=\"{}\"}} {}",
                a.actor, a.restarts
            );
        }
        header(
            &mut out,
            "cronmesh_actor_handling_seconds",
            "histogram",
            "Time to handle one message.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                s.handling_seconds.write_prometheus(
                    &mut out,
                    "cronmesh_actor_handling_seconds",
                    &format!("actor=\"{}\",message=\"{m}\"", a.actor),
                );
            }
        }
        header(
            &mut out,
            "cronmesh_fires_total",
            "counter",
            "Fires sent to executors.",
        );
        let _ = writeln!(out, "cronmesh_fires_total {}", self.fires_total);
        header(
            &mut out,
            "cronmesh_runs_total",
            "counter",
            "Run outcomes by status.",
        );
        for (status, n) in &self.runs_total {
            let _ = writeln!(out, "cronmesh_runs_total{{status=\"{status}\"}} {n}");
        }
        header(
            &mut out,
            "cronmesh_fire_lateness_seconds",
            "histogram",
            "Handler start minus scheduled fire time.",
        );
        self.fire_lateness_seconds
            .write_prometheus(&mut out, "cronmesh_fire_lateness_seconds", "");
        header(
            &mut out,
            "cronmesh_persistence_buffered",
            "gauge",
            "Writes waiting for the database.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_buffered {}",
            self.persistence_buffered
        );
        header(
            &mut out,
            "cronmesh_persistence_buffer_bound",
            "gauge",
            "The most writes that may wait for the database.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_buffer_bound {}",
            self.persistence_buffer_bound
        );
        header(
            &mut out,
            "cronmesh_persistence_dropped_writes_total",
            "counter",
            "Writes given up because the buffer was full.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_dropped_writes_total {}",
            self.persistence_dropped_writes
        );
        header(
            &mut out,
            "cronmesh_degraded",
            "gauge",
            "1 while a backend is down.",
        );
        let _ = writeln!(out, "cronmesh_degraded {}", i32::from(self.degraded));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ping;

    #[test]
    fn depth_is_received_minus_handled() {
        let m = Metrics::new();
        let a = m.actor("TestActor");
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

    #[test]
    fn histogram_buckets_are_cumulative_in_text() {
        let mut h = Histogram::new(&LATENESS_BUCKETS);
        h.observe(0.0001);
        h.observe(0.003);
        h.observe(100.0);
        let mut out = String::new();
        h.write_prometheus(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1"));
        assert!(out.contains("x_bucket{le=\"0.005\"} 2"));
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3"));
    }
}
