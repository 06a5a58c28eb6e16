//! One actor kind's mailbox metrics, and the address wrapper that counts what is sent.
//!
//! Senders count a message as received when they put it in the mailbox (through [`Metered`]);
//! the handler counts it as handled and times it with [`ActorMetrics::handling`]. The
//! difference is the mailbox depth, which actix itself does not expose.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, MailboxError, Message};
use serde::Serialize;

use super::histogram::{HANDLING_BUCKETS, Histogram};

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

/// A type's own name, without its path or generic parameters: how actors and messages are
/// named in every metric (`ExecutorActor`, `Fire`), so no name is written out by hand.
pub(crate) fn type_label<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

impl ActorMetrics {
    pub(crate) fn new(name: &'static str) -> Self {
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
        self.with_stats(type_label::<M>(), |s| s.received += 1);
    }

    /// Starts timing the handling of a message of type `M`; the guard records it when dropped.
    pub fn handling<M>(self: &Arc<Self>) -> HandlingGuard {
        HandlingGuard {
            metrics: self.clone(),
            msg: type_label::<M>(),
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

    pub(crate) fn snapshot(&self) -> ActorSnapshot {
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
    pub(crate) fn new(addr: Addr<A>, metrics: Arc<ActorMetrics>) -> Self {
        Metered { addr, metrics }
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

    /// Sends, and gives a future of the reply that borrows nothing (it can be kept, moved
    /// into a task or turned into an actor future with `.into_actor(..)`).
    pub fn send<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, MailboxError>> + 'static
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.metrics.received::<M>();
        self.addr.send(msg)
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
