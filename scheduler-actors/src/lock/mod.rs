//! The LockActor: who may run a fire.
//!
//! A fire lock is a key `<prefix>:{<task>}:fire:<fire_ts_ms>` holding a value unique to one
//! acquisition. Acquire is set-if-absent with a ttl; renewal and release only touch the key
//! while it still holds our value. While a run lasts the actor renews every held lock at a
//! third of its ttl, in one batch per tick. A renewal answered "not yours" means the lock is
//! lost: the lease's `lost` token fires and the run is cancelled. A renewal that errors is
//! retried until the lock's local (monotonic) deadline passes, then treated the same way.
//!
//! Renewals and releases go through this one mailbox, so a release is always issued after
//! every renewal that was issued before it, and no renewal is issued after it.

mod backend;
mod memory;
mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio_util::sync::CancellationToken;

pub use self::backend::{LockBackend, RenewItem};
pub use self::memory::MemoryLockBackend;
pub use self::redis::RedisLockBackend;
use crate::error::Error;
use crate::metrics::{ActorMetrics, Metrics};

/// A held lock, as its holder sees it.
#[derive(Debug, Clone)]
pub struct LockLease {
    /// The key.
    pub key: String,
    /// Our value.
    pub value: String,
    /// Fires when the lock is lost.
    pub lost: CancellationToken,
    /// The backend was unreachable: no key was set, and the run is guarded by its database
    /// claim alone. Nothing to renew or release.
    pub degraded: bool,
}

/// Take the lock of one fire.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<LockLease>, Error>")]
pub struct Acquire {
    /// Lock key.
    pub key: String,
    /// Time to live; renewed at a third of it while held.
    pub ttl: Duration,
}

/// Give a lock up.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Release {
    /// Key.
    pub key: String,
    /// Our value.
    pub value: String,
    /// Keep the key this long instead of deleting it.
    pub keep_for: Option<Duration>,
}

/// How many locks this node holds now.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct HeldLocks;

/// Stop and start again under the supervisor (drops in-flight backend calls, keeps held
/// locks). What a backend connection failure does; also available to operators and tests.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RestartLocks;

/// A lock was acquired: renew it from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Track {
    key: String,
    held: Held,
}

#[derive(Debug)]
struct Held {
    value: String,
    ttl: Duration,
    lost: CancellationToken,
    next_renewal: Instant,
    /// Past this instant without a successful renewal the lock may belong to someone else.
    deadline: Instant,
}

/// Owns the lock backend and every lock this node holds.
pub struct LockActor {
    backend: Arc<dyn LockBackend>,
    node_id: String,
    held: HashMap<String, Held>,
    /// No held lock needs renewing or passes its deadline before this: the 25 ms tick skips
    /// the scan over every held lock until then (a busy node holds thousands).
    next_check: Instant,
    renewing: bool,
    /// Shared with acquisitions in flight, which run outside the actor's context.
    degraded: Arc<AtomicBool>,
    node_metrics: Arc<Metrics>,
    metrics: Arc<ActorMetrics>,
}

/// How often the actor looks for locks due for renewal.
const RENEW_TICK: Duration = Duration::from_millis(25);
/// A renewal batch that takes longer than this counts as failed.
const RENEW_TIMEOUT: Duration = Duration::from_secs(2);

impl LockActor {
    /// A lock actor over `backend`, tagging lock values with `node_id`.
    pub fn new(backend: Arc<dyn LockBackend>, node_id: String, node_metrics: Arc<Metrics>) -> Self {
        LockActor {
            backend,
            node_id,
            held: HashMap::new(),
            next_check: Instant::now(),
            renewing: false,
            degraded: Arc::new(AtomicBool::new(false)),
            metrics: node_metrics.actor::<LockActor>(),
            node_metrics,
        }
    }

    fn renew_due(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        let mut lost = Vec::new();
        let mut due = Vec::new();
        let mut next_check = now + Duration::from_secs(3600);
        for (key, h) in &self.held {
            if now >= h.deadline {
                lost.push(key.clone());
            } else if now >= h.next_renewal {
                next_check = next_check.min(h.deadline);
                due.push(RenewItem {
                    key: key.clone(),
                    value: h.value.clone(),
                    ttl: h.ttl,
                });
            } else {
                next_check = next_check.min(h.next_renewal);
            }
        }
        self.next_check = next_check;
        for key in lost {
            if let Some(h) = self.held.remove(&key) {
                tracing::warn!(target: "cron_task", lock = %key, "lock deadline passed without a successful renewal; treating it as lost");
                h.lost.cancel();
            }
        }
        // Deadlines are checked above even while a renewal hangs, so a stuck backend still
        // ends in a lost lock rather than a run that believes it holds one.
        if due.is_empty() {
            return;
        }
        if self.renewing {
            self.next_check = now; // still due: look again at the next tick
            return;
        }
        self.renewing = true;
        let started = Instant::now();
        let fut = tokio::time::timeout(RENEW_TIMEOUT, self.backend.renew(due.clone()));
        ctx.spawn(fut.into_actor(self).map(move |answer, act, _ctx| {
            act.renewing = false;
            let answer = answer.unwrap_or_else(|_| {
                Err(Error::LockTimeout { backend: act.backend.name(), after: RENEW_TIMEOUT })
            });
            match answer {
                Ok(answers) => {
                    for (item, kept) in due.iter().zip(answers) {
                        // Released (or released and taken again) meanwhile: not this answer's lock.
                        let Some(h) = act.held.get_mut(&item.key).filter(|h| h.value == item.value) else {
                            continue;
                        };
                        match kept {
                            Some(true) => {
                                h.deadline = started + h.ttl;
                                h.next_renewal = started + h.ttl / 3;
                                act.next_check = act.next_check.min(h.next_renewal);
                            }
                            // Still due: tried again at the next tick, until its deadline.
                            None => act.next_check = Instant::now(),
                            Some(false) => {
                                if let Some(h) = act.held.remove(&item.key) {
                                    tracing::warn!(target: "cron_task", lock = %item.key, "lock lost: renewal refused");
                                    h.lost.cancel();
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    act.next_check = Instant::now();
                    tracing::warn!(target: "cron_task", error = %e, "lock renewal failed; retrying until the lock deadline");
                }
            }
        }));
    }
}

/// Notes whether the backend answers; logs and sets the metric when that changes.
fn set_degraded(
    flag: &AtomicBool,
    metrics: &Metrics,
    backend: &'static str,
    degraded: bool,
    why: Option<&Error>,
) {
    if flag.swap(degraded, Ordering::Relaxed) == degraded {
        return;
    }
    metrics.set_degraded(degraded);
    match why {
        Some(e) if degraded => {
            tracing::warn!(target: "cron_task", backend, error = %e, "lock backend unreachable: running degraded, fires are guarded by their database claim alone")
        }
        _ => tracing::info!(target: "cron_task", backend, "lock backend reachable again"),
    }
}

impl Actor for LockActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.instances(1);
        ctx.run_interval(RENEW_TICK, |act, ctx| act.renew_due(ctx));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.instances(-1);
    }
}

impl Supervised for LockActor {
    /// Held locks are kept (their runs still need them renewed); a renewal that was in flight
    /// is forgotten and redone at the next tick.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.metrics.restarted();
        self.renewing = false;
        self.next_check = Instant::now();
        tracing::warn!(target: "cron_task", held = self.held.len(), "lock actor restarting");
    }
}

impl Handler<RestartLocks> for LockActor {
    type Result = ();

    fn handle(&mut self, _msg: RestartLocks, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<RestartLocks>();
        ctx.stop();
    }
}

impl Handler<Acquire> for LockActor {
    type Result = ResponseFuture<Result<Option<LockLease>, Error>>;

    /// Tries the lock once; `None` when another holder has it. The backend call runs as its
    /// own task, not in this actor's context: actix polls every future pending in a context
    /// on each wake-up, so thousands of acquisitions in flight there would cost quadratic time.
    fn handle(&mut self, msg: Acquire, ctx: &mut Self::Context) -> Self::Result {
        let _timing = self.metrics.handling::<Acquire>();
        let value = format!("{}:{}", self.node_id, uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let fut = self
            .backend
            .acquire(msg.key.clone(), value.clone(), msg.ttl);
        let me = ctx.address();
        let degraded = self.degraded.clone();
        let metrics = self.node_metrics.clone();
        let backend = self.backend.name();
        Box::pin(async move {
            let got = match fut.await {
                Ok(got) => {
                    set_degraded(&degraded, &metrics, backend, false, None);
                    got
                }
                Err(e) => {
                    // The database claim still keeps the fire to one run; keep scheduling.
                    set_degraded(&degraded, &metrics, backend, true, Some(&e));
                    return Ok(Some(LockLease {
                        key: msg.key,
                        value,
                        lost: CancellationToken::new(),
                        degraded: true,
                    }));
                }
            };
            if !got {
                return Ok(None);
            }
            let lost = CancellationToken::new();
            // Queued before the holder hears of the lease, so before its Release.
            me.do_send(Track {
                key: msg.key.clone(),
                held: Held {
                    value: value.clone(),
                    ttl: msg.ttl,
                    lost: lost.clone(),
                    next_renewal: started + msg.ttl / 3,
                    deadline: started + msg.ttl,
                },
            });
            Ok(Some(LockLease {
                key: msg.key,
                value,
                lost,
                degraded: false,
            }))
        })
    }
}

impl Handler<Track> for LockActor {
    type Result = ();

    fn handle(&mut self, msg: Track, _ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Track>();
        self.next_check = self.next_check.min(msg.held.next_renewal);
        self.held.insert(msg.key, msg.held);
    }
}

impl Handler<Release> for LockActor {
    type Result = ();

    /// Stops renewing, then releases in the backend.
    fn handle(&mut self, msg: Release, _ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<Release>();
        if self
            .held
            .get(&msg.key)
            .is_some_and(|h| h.value == msg.value)
        {
            self.held.remove(&msg.key);
        }
        let fut = self
            .backend
            .release(msg.key.clone(), msg.value, msg.keep_for);
        // Its own task, like an acquisition: nothing here waits for the answer.
        actix::spawn(async move {
            if let Err(e) = fut.await {
                // The key expires by itself after its ttl; the run's record is already final.
                tracing::warn!(target: "cron_task", lock = %msg.key, error = %e, "lock release failed");
            }
        });
    }
}

impl Handler<HeldLocks> for LockActor {
    type Result = usize;

    fn handle(&mut self, _msg: HeldLocks, _ctx: &mut Self::Context) -> usize {
        let _timing = self.metrics.handling::<HeldLocks>();
        self.held.len()
    }
}

/// The lock key of one fire.
pub(crate) fn fire_key(prefix: &str, task: &str, fire_ts_ms: i64) -> String {
    format!("{prefix}:{{{task}}}:fire:{fire_ts_ms}")
}

crate::metrics::answer_get_metrics!(LockActor, actor: metrics, node: node_metrics);

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock actor over a memory backend, holding key `k` for `ttl`.
    async fn holding_k(ttl: Duration) -> (Arc<MemoryLockBackend>, Addr<LockActor>, LockLease) {
        let backend = Arc::new(MemoryLockBackend::new());
        let metrics = crate::metrics::Metrics::new();
        let actor = LockActor::new(backend.clone(), "n1".into(), metrics).start();
        let key = "k".to_owned();
        let lease = actor
            .send(Acquire { key, ttl })
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(lease) = lease else {
            panic!("acquired")
        };
        (backend, actor, lease)
    }

    /// Whether someone else can take `k` now.
    async fn free_for_others(backend: &MemoryLockBackend, ttl: Duration) -> bool {
        let got = backend.acquire("k".into(), "other".into(), ttl).await;
        got.unwrap_or(false)
    }

    #[actix_rt::test]
    async fn actor_renews_held_locks_past_their_ttl() {
        let ttl = Duration::from_millis(150);
        let (backend, actor, lease) = holding_k(ttl).await;
        // Three ttls later the lock is still ours: renewals kept it alive.
        tokio::time::sleep(ttl * 3).await;
        assert!(!lease.lost.is_cancelled());
        assert!(!free_for_others(&backend, ttl).await);
        actor.do_send(Release {
            key: "k".into(),
            value: lease.value.clone(),
            keep_for: None,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(actor.send(HeldLocks).await.unwrap_or(1), 0);
        assert!(free_for_others(&backend, ttl).await);
    }

    #[actix_rt::test]
    async fn refused_renewal_fires_the_lost_token() {
        let ttl = Duration::from_millis(150);
        let (backend, _actor, lease) = holding_k(ttl).await;
        // Someone else's release-and-take (as after a Redis restart).
        backend.with_locks(|l| l.insert("k".into(), ("thief".into(), Instant::now() + ttl * 10)));
        tokio::time::timeout(ttl * 3, lease.lost.cancelled())
            .await
            .expect("lost in time");
    }
}
