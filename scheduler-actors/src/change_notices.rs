//! Change notices over Redis pub/sub, both halves: whoever changes a task (the CLI, another
//! node) publishes one, and every node's scheduler reloads at once instead of at its next
//! reconcile. Notices only speed things up; the periodic reconcile remains the guarantee, so a
//! lost notice (Redis down, a node reconnecting) costs at most a second.

use std::time::Duration;

use futures_util::{Stream, StreamExt};

/// The channel notices go to.
pub fn changes_channel(prefix: &str) -> String {
    format!("{prefix}:changes")
}

/// Publishes a change notice; failures are returned, not retried (the reconcile covers them).
pub async fn publish_change(
    redis_url: &str,
    prefix: &str,
    what: &str,
) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| {
        redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connecting to redis timed out",
        ))
    })??;
    let _: i64 = redis::cmd("PUBLISH")
        .arg(changes_channel(prefix))
        .arg(what)
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// Subscribes to `channel`: one item per notice, until the connection ends.
pub(crate) async fn subscribe(
    redis_url: String,
    channel: String,
) -> Result<impl Stream<Item = ()>, redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&channel).await?;
    Ok(pubsub.into_on_message().map(|_| ()))
}
