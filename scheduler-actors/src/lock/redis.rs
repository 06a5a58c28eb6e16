//! The Redis lock backend, for a cluster.
//!
//! Acquire is `SET key value NX PX ttl` (milliseconds, so sub-second ttls are exact). Renewal
//! and release run Lua scripts that act only while the key still holds our value: compare-and-
//! pexpire and compare-and-delete; a bare `DEL` or `PEXPIRE` is never sent. Renewals of all due
//! locks go out as one pipeline per tick. Scripts are sent by hash; after a Redis restart
//! (`NOSCRIPT`) they are loaded again and the call is retried once.
//!
//! The connection (`redis_topology::RedisConn`: one server, a cluster or the sentinels'
//! master) has explicit connect and response timeouts and reconnects by itself, so a Redis
//! restart or failover needs nothing from the operator. On a cluster the scripts are sent
//! whole (`EVAL`), one command per lock, the renewals of a tick all at once: one pipeline
//! cannot span slots, and a script cached by hash would have to be loaded on every node
//! again after one restarts.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::backend::{LockBackend, RenewItem};
use crate::error::Error;
use crate::redis_topology::{RedisConn, RedisTarget};

/// Extends the key's life if it still holds our value. `ARGV[2]` is a positive ttl in ms.
const RENEW_LUA: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the key if it still holds our value.
const RELEASE_LUA: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
";

/// Locks in Redis.
#[derive(Clone)]
pub struct RedisLockBackend {
    conn: RedisConn,
    renew: Script,
    release: Script,
}

fn lock_error(e: RedisError) -> Error {
    Error::lock_backend("redis", e)
}

fn is_noscript(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}

/// A ttl as Redis milliseconds, never below 1 (PEXPIRE with 0 or less deletes the key).
fn ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisLockBackend {
    /// Whether `url` is a Redis URL this backend can use; the error says what is wrong
    /// without repeating the URL (it may hold a password).
    pub fn check_url(url: &str) -> Result<(), String> {
        RedisTarget::parse(url).map(drop)
    }

    /// Connects lazily: the node starts even if Redis is down, and runs degraded until it is up.
    pub fn connect(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, Error> {
        let target = RedisTarget::parse(url)
            .map_err(|why| Error::lock_backend("redis", format!("the redis URL {why}")))?;
        Ok(RedisLockBackend {
            conn: target.connect(connect_timeout, response_timeout),
            renew: Script::new(RENEW_LUA),
            release: Script::new(RELEASE_LUA),
        })
    }

    /// Renews on one server (or the sentinels' master): one pipeline of `EVALSHA`s.
    async fn renew_batch(&self, items: &[RenewItem]) -> Result<Vec<Option<bool>>, RedisError> {
        let mut pipe = redis::pipe();
        for item in items {
            pipe.cmd("EVALSHA")
                .arg(self.renew.get_hash())
                .arg(1)
                .arg(&item.key)
                .arg(&item.value)
                .arg(ttl_ms(item.ttl));
        }
        let mut conn = self.conn.clone();
        let answers: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(answers.into_iter().map(|n| Some(n == 1)).collect())
    }

    /// Renews on a cluster: every lock its own `EVAL` (keys of a tick sit on many slots, and
    /// a script loaded by hash would need every node up to be loaded again after a
    /// restart), all at once. A lock whose master failed gets `None`; the rest still count.
    async fn renew_on_cluster(&self, items: &[RenewItem]) -> Result<Vec<Option<bool>>, Error> {
        let calls = items.iter().map(|item| {
            let mut conn = self.conn.clone();
            let mut call = redis::cmd("EVAL");
            call.arg(RENEW_LUA)
                .arg(1)
                .arg(&item.key)
                .arg(&item.value)
                .arg(ttl_ms(item.ttl));
            async move { call.query_async::<i64>(&mut conn).await }
        });
        let answers = futures_util::future::join_all(calls).await;
        let failed = answers.iter().filter(|a| a.is_err()).count();
        if let Some(Err(e)) = answers.iter().find(|a| a.is_err()) {
            if failed == answers.len() {
                return Err(lock_error(e.clone()));
            }
            tracing::warn!(target: "cron_task", error = %e, failed, of = answers.len(),
                "some lock renewals failed on the Redis Cluster; retrying them until their deadlines");
        }
        Ok(answers
            .into_iter()
            .map(|a| a.ok().map(|n| n == 1))
            .collect())
    }
}

impl LockBackend for RedisLockBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn shared_across_nodes(&self) -> bool {
        true
    }

    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, Error>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let reply: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms(ttl))
                .query_async(&mut conn)
                .await
                .map_err(lock_error)?;
            Ok(reply.is_some())
        })
    }

    fn renew(&self, items: Vec<RenewItem>) -> BoxFuture<'static, Result<Vec<Option<bool>>, Error>> {
        let this = self.clone();
        Box::pin(async move {
            if this.conn.is_cluster() {
                return this.renew_on_cluster(&items).await;
            }
            match this.renew_batch(&items).await {
                Err(e) if is_noscript(&e) => {
                    let mut conn = this.conn.clone();
                    this.renew
                        .prepare_invoke()
                        .load_async(&mut conn)
                        .await
                        .map_err(lock_error)?;
                    this.renew_batch(&items).await.map_err(lock_error)
                }
                other => other.map_err(lock_error),
            }
        })
    }

    fn release(
        &self,
        key: String,
        value: String,
        keep_for: Option<Duration>,
    ) -> BoxFuture<'static, Result<bool, Error>> {
        let this = self.clone();
        Box::pin(async move {
            let mut conn = this.conn.clone();
            if conn.is_cluster() {
                // As for renewals: the script itself, not its hash.
                let mut call = redis::cmd("EVAL");
                match keep_for {
                    Some(keep) => call
                        .arg(RENEW_LUA)
                        .arg(1)
                        .arg(&key)
                        .arg(&value)
                        .arg(ttl_ms(keep)),
                    None => call.arg(RELEASE_LUA).arg(1).arg(&key).arg(&value),
                };
                let n: i64 = call.query_async(&mut conn).await.map_err(lock_error)?;
                return Ok(n == 1);
            }
            // `invoke_async` sends EVALSHA and loads the script on NOSCRIPT.
            let n: i64 = match keep_for {
                Some(keep) => {
                    this.renew
                        .key(&key)
                        .arg(&value)
                        .arg(ttl_ms(keep))
                        .invoke_async(&mut conn)
                        .await
                }
                None => {
                    this.release
                        .key(&key)
                        .arg(&value)
                        .invoke_async(&mut conn)
                        .await
                }
            }
            .map_err(lock_error)?;
            Ok(n == 1)
        })
    }
}
