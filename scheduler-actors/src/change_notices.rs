//! Change notices over Redis pub/sub, both halves: whoever changes a task (the CLI, another
//! node) publishes one, and every node's scheduler reloads at once instead of at its next
//! reconcile. Notices only speed things up; the periodic reconcile remains the guarantee, so a
//! lost notice (Redis down, a node reconnecting) costs at most a second. On a Redis Cluster
//! a classic `PUBLISH` reaches every node, so a subscriber on any one of them hears it.

use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::redis_topology::RedisTarget;

/// The channel notices go to.
pub fn changes_channel(prefix: &str) -> String {
    format!("{prefix}:changes")
}

/// How long publishing or subscribing waits for Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn target(redis_url: &str) -> Result<RedisTarget, redis::RedisError> {
    RedisTarget::parse(redis_url).map_err(|why| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "the redis URL is not usable",
            why,
        ))
    })
}

/// Publishes a change notice; failures are returned, not retried (the reconcile covers them).
pub async fn publish_change(
    redis_url: &str,
    prefix: &str,
    what: &str,
) -> Result<(), redis::RedisError> {
    let mut conn = target(redis_url)?.connect(CONNECT_TIMEOUT, CONNECT_TIMEOUT);
    let mut command = redis::cmd("PUBLISH");
    command.arg(changes_channel(prefix)).arg(what);
    let publish = command.query_async::<i64>(&mut conn);
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, publish).await {
        Ok(answer) => answer.map(drop),
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "publishing to redis timed out",
        ))),
    }
}

/// Subscribes to `channel`: one item per notice, until the connection ends.
pub(crate) async fn subscribe(
    redis_url: String,
    channel: String,
) -> Result<impl Stream<Item = ()>, redis::RedisError> {
    let mut pubsub = target(&redis_url)?.pubsub(CONNECT_TIMEOUT).await?;
    pubsub.subscribe(&channel).await?;
    Ok(pubsub.into_on_message().map(|_| ()))
}
