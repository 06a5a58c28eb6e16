//! In-process locks: the embedded single node's backend, and the model every backend follows.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::backend::{LockBackend, RenewItem};
use crate::error::Error;

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

    pub(super) fn with_locks<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T,
    ) -> T {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut locks)
    }
}

impl LockBackend for MemoryLockBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn shared_across_nodes(&self) -> bool {
        false
    }

    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, Error>> {
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

    fn renew(&self, items: Vec<RenewItem>) -> BoxFuture<'static, Result<Vec<Option<bool>>, Error>> {
        let now = Instant::now();
        let answers = self.with_locks(|locks| {
            items
                .into_iter()
                .map(|item| match locks.get_mut(&item.key) {
                    Some((v, expiry)) if *v == item.value && *expiry > now => {
                        *expiry = now + item.ttl;
                        Some(true)
                    }
                    _ => Some(false),
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
    ) -> BoxFuture<'static, Result<bool, Error>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::fire_key;

    /// Acquire, answered `false` on an error.
    async fn acquire(backend: &MemoryLockBackend, key: &str, value: &str, ttl: Duration) -> bool {
        let got = backend.acquire(key.into(), value.into(), ttl).await;
        got.unwrap_or(false)
    }

    /// Release, answered `false` on an error.
    async fn release(
        backend: &MemoryLockBackend,
        key: &str,
        value: &str,
        keep: Option<Duration>,
    ) -> bool {
        let released = backend.release(key.into(), value.into(), keep).await;
        released.unwrap_or(false)
    }

    #[actix_rt::test]
    async fn memory_lock_is_exclusive_until_release() {
        let backend = MemoryLockBackend::new();
        let key = fire_key("cm", "a.b", 1000);
        assert_eq!(key, "cm:{a.b}:fire:1000");
        let ttl = Duration::from_secs(5);
        assert!(acquire(&backend, &key, "n1:x", ttl).await);
        assert!(!acquire(&backend, &key, "n2:y", ttl).await);
        assert!(
            !release(&backend, &key, "n2:y", None).await,
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
        assert_eq!(renewed, [Some(false)]);
        assert!(release(&backend, &key, "n1:x", None).await);
        assert!(acquire(&backend, &key, "n2:y", ttl).await);
    }

    #[actix_rt::test]
    async fn kept_key_blocks_the_fire_until_it_expires() {
        let backend = MemoryLockBackend::new();
        let ttl = Duration::from_secs(5);
        assert!(acquire(&backend, "k", "a", ttl).await);
        let keep = Some(Duration::from_millis(30));
        assert!(release(&backend, "k", "a", keep).await);
        assert!(!acquire(&backend, "k", "b", ttl).await);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(acquire(&backend, "k", "b", ttl).await);
    }
}
