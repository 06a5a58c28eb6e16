//! The seam between the lock actor and where locks live: a small object-safe trait, held as
//! `Arc<dyn LockBackend>`, with an in-process implementation ([`super::MemoryLockBackend`]) and
//! a Redis one ([`super::RedisLockBackend`]).

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::error::Error;

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
    /// Whether other nodes see the same locks (a cluster backend). A node whose database
    /// writes fail leaves its fires to such peers; with a node-local backend there are none.
    fn shared_across_nodes(&self) -> bool;
    /// Sets `key` to `value` for `ttl` if it is absent; `true` when we got it.
    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, Error>>;
    /// Extends every lock that still holds our value; one answer per item, in order:
    /// `Some(true)` extended, `Some(false)` not ours any more (lost), `None` this lock's
    /// renewal failed (a backend spread over several servers can fail for some locks only;
    /// the actor tries again until the lock's deadline). `Err` when the whole call failed.
    fn renew(&self, items: Vec<RenewItem>) -> BoxFuture<'static, Result<Vec<Option<bool>>, Error>>;
    /// Gives a lock up if it still holds our value: deletes it, or with `keep_for` lets it
    /// expire after that long so the fire cannot be taken again meanwhile.
    fn release(
        &self,
        key: String,
        value: String,
        keep_for: Option<Duration>,
    ) -> BoxFuture<'static, Result<bool, Error>>;
}
