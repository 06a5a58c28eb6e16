//! The LockActor and its backends: who may run a fire.
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ActorMetrics, Metrics};

/// A lock backend failed (not "the lock is taken", which is a normal answer).
#[derive(Debug, Clone, thiserror::Error)]
#[error("lock backend {backend}: {message}")]
pub struct LockError {
    /// Which backend.
    pub backend: &'static str,
    /// What went wrong.
    pub message: String,
}

/// One lock to renew.
#[derive(Debug, Clone)]
pub struct RenewItem {
    /// Key.
    pub key: String,
    /// Our value.
    pub value: String,
    /// New ttl.
    pub ttl: Duration,
}

/// Where locks live. Object-safe, so a node holds an `Arc<dyn LockBackend>`.
pub trait LockBackend: Send + Sync + 'static {
    /// Short name for logs and metrics (`memory`, `redis`).
    fn name(&self) -> &'static str;
    /// Sets `key` to `value` for `ttl` if it is absent; `true` when we got it.
    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LockError>>;
    /// Extends every lock that still holds our value; one answer per item, in order.
    fn renew(&self, items: Vec<RenewItem>) -> BoxFuture<'static, Result<Vec<bool>, LockError>>;
    /// Gives a lock up if it still holds our value: deletes it, or with `keep_for` lets it
    /// expire after that long so the fire cannot be taken again meanwhile.
    fn release(
        &self,
        key: String,
        value: String,
        keep_for: Option<Duration>,
    ) -> BoxFuture<'static, Result<bool, LockError>>;
}

/// In-process locks for a single node (the embedded default).
#[derive(Debug, Default)]
pub struct MemoryLockBackend {
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryLockBackend {
    /// An empty lock table.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_locks<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T) -> T {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut locks)
    }
}

impl LockBackend for MemoryLockBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, LockError>> {
        let now = Instant::now();
        let got = self.with_locks(|locks| {
            // Expired keys are dropped now and then so the table stays small.
            if locks.len() > 1024 && locks.len().is_power_of_two() {
                locks.retain(|_, (_, expiry)| *expiry > now);
            }
            match locks.get(&key) {
                Some((_, expiry)) if *expiry > now => false,
                _ => {
                    locks.insert(key, (value, now + ttl));
                    true
                }
            }
        });
        Box::pin(async move { Ok(got) })
    }

    fn renew(&self, items: Vec<RenewItem>) -> BoxFuture<'static, Result<Vec<bool>, LockError>> {
        let now = Instant::now();
        let answers = self.with_locks(|locks| {
            items
                .into_iter()
                .map(|item| match locks.get_mut(&item.key) {
                    Some((v, expiry)) if *v == item.value && *expiry > now => {
                        *expiry = now + item.ttl;
                        true
                    }
                    _ => false,
                })
                .collect()
        });
        Box::pin(async move { Ok(answers) })
    }

    fn release(
        &self,
        key: String,
        value: String,
        keep_for: Option<Duration>,
    ) -> BoxFuture<'static, Result<bool, LockError>> {
        let now = Instant::now();
        let released = self.with_locks(|locks| match locks.get_mut(&key) {
            Some((v, expiry)) if *v == value => {
                match keep_for {
                    Some(keep) => *expiry = now + keep,
                    None => {
                        locks.remove(&key);
                    }
                }
                true
            }
            _ => false,
        });
        Box::pin(async move { Ok(released) })
    }
}

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
#[rtype(result = "Result<Option<LockLease>, LockError>")]
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

#[derive(Debug)]
struct Held {
    value: String,
    ttl: Duration,
    lost: CancellationToken,
    next_renewal: Instant,
    /// Past this instant without a successful renewal the lock may belong to someone else.
    deadline: Instant,
}

/// Notes whether the backend answers; logs and sets the metric when that changes.
fn set_degraded(
    flag: &AtomicBool,
    metrics: &Metrics,
    backend: &'static str,
    degraded: bool,
    why: Option<&LockError>,
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
            metrics: node_metrics.actor("LockActor"),
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
                Err(LockError { backend: "lock", message: format!("renewal took longer than {RENEW_TIMEOUT:?}") })
            });
            match answer {
                Ok(answers) => {
                    for (item, kept) in due.iter().zip(answers) {
                        // Released (or released and taken again) meanwhile: not this answer's lock.
                        let Some(h) = act.held.get_mut(&item.key).filter(|h| h.value == item.value) else {
                            continue;
                        };
                        if kept {
                            h.deadline = started + h.ttl;
                            h.next_renewal = started + h.ttl / 3;
                            act.next_check = act.next_check.min(h.next_renewal);
                        } else if let Some(h) = act.held.remove(&item.key) {
                            tracing::warn!(target: "cron_task", lock = %item.key, "lock lost: renewal refused");
                            h.lost.cancel();
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

/// Stop and start again under the supervisor (drops in-flight backend calls, keeps held
/// locks). What a backend connection failure does; also available to operators and tests.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RestartLocks;

impl Handler<RestartLocks> for LockActor {
    type Result = ();

    fn handle(&mut self, _msg: RestartLocks, ctx: &mut Self::Context) {
        let _timing = self.metrics.handling::<RestartLocks>();
        ctx.stop();
    }
}

impl Handler<Acquire> for LockActor {
    type Result = ResponseFuture<Result<Option<LockLease>, LockError>>;

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

/// A lock was acquired: renew it from now on.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Track {
    key: String,
    held: Held,
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
pub fn fire_key(prefix: &str, task: &str, fire_ts_ms: i64) -> String {
    format!("{prefix}:{{{task}}}:fire:{fire_ts_ms}")
}

crate::metrics::answer_get_metrics!(LockActor, actor: metrics, node: node_metrics);

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn memory_lock_is_exclusive_until_release() {
        let backend = MemoryLockBackend::new();
        let key = fire_key("cm", "a.b", 1000);
        assert_eq!(key, "cm:{a.b}:fire:1000");
        let ttl = Duration::from_secs(5);
        assert!(
            backend
                .acquire(key.clone(), "n1:x".into(), ttl)
                .await
                .unwrap_or(false)
        );
        assert!(
            !backend
                .acquire(key.clone(), "n2:y".into(), ttl)
                .await
                .unwrap_or(true)
        );
        assert!(
            !backend
                .release(key.clone(), "n2:y".into(), None)
                .await
                .unwrap_or(true),
            "not the holder"
        );
        let renewed = backend
            .renew(vec![RenewItem {
                key: key.clone(),
                value: "n2:y".into(),
                ttl,
            }])
            .await
            .unwrap_or_default();
        assert_eq!(renewed, [false]);
        assert!(
            backend
                .release(key.clone(), "n1:x".into(), None)
                .await
                .unwrap_or(false)
        );
        assert!(
            backend
                .acquire(key, "n2:y".into(), ttl)
                .await
                .unwrap_or(false)
        );
    }

    #[actix_rt::test]
    async fn kept_key_blocks_the_fire_until_it_expires() {
        let backend = MemoryLockBackend::new();
        let ttl = Duration::from_secs(5);
        assert!(
            backend
                .acquire("k".into(), "a".into(), ttl)
                .await
                .unwrap_or(false)
        );
        assert!(
            backend
                .release("k".into(), "a".into(), Some(Duration::from_millis(30)))
                .await
                .unwrap_or(false)
        );
        assert!(
            !backend
                .acquire("k".into(), "b".into(), ttl)
                .await
                .unwrap_or(true)
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            backend
                .acquire("k".into(), "b".into(), ttl)
                .await
                .unwrap_or(false)
        );
    }

    #[actix_rt::test]
    async fn actor_renews_held_locks_past_their_ttl() {
        let backend = Arc::new(MemoryLockBackend::new());
        let metrics = crate::metrics::Metrics::new();
        let actor = LockActor::new(backend.clone(), "n1".into(), metrics.clone()).start();
        let ttl = Duration::from_millis(150);
        let lease = actor
            .send(Acquire {
                key: "k".into(),
                ttl,
            })
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(lease) = lease else {
            panic!("acquired")
        };
        // Three ttls later the lock is still ours: renewals kept it alive.
        tokio::time::sleep(ttl * 3).await;
        assert!(!lease.lost.is_cancelled());
        assert!(
            !backend
                .acquire("k".into(), "other".into(), ttl)
                .await
                .unwrap_or(true)
        );
        actor.do_send(Release {
            key: "k".into(),
            value: lease.value.clone(),
            keep_for: None,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(actor.send(HeldLocks).await.unwrap_or(1), 0);
        assert!(
            backend
                .acquire("k".into(), "other".into(), ttl)
                .await
                .unwrap_or(false)
        );
    }

    #[actix_rt::test]
    async fn refused_renewal_fires_the_lost_token() {
        let backend = Arc::new(MemoryLockBackend::new());
        let metrics = crate::metrics::Metrics::new();
        let actor = LockActor::new(backend.clone(), "n1".into(), metrics.clone()).start();
        let ttl = Duration::from_millis(150);
        let lease = actor
            .send(Acquire {
                key: "k".into(),
                ttl,
            })
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(lease) = lease else {
            panic!("acquired")
        };
        // Someone else's release-and-take (as after a Redis restart).
        backend.with_locks(|l| l.insert("k".into(), ("thief".into(), Instant::now() + ttl * 10)));
        tokio::time::timeout(ttl * 3, lease.lost.cancelled())
            .await
            .expect("lost in time");
    }
}
