//! Where a node finds Redis, and one connection type for every shape of it.
//!
//! - `redis://host:port[/db]` (or `rediss://`, `unix://`): one server.
//! - `redis+cluster://host:port,host:port,...`: a Redis Cluster, found from any of the seed
//!   nodes listed; commands go to the master of their key's slot (lock keys hash-tag the task,
//!   so a task's keys share a slot), and the client follows slot moves and failovers itself.
//! - `redis+sentinel://host:port,host:port,.../master-name[/db]`: the master that the listed
//!   sentinels name. The user and password in the URL are the master's; the sentinels are
//!   asked without them. After a failover the next command that fails on the old master
//!   (refused, dropped, timed out, or `READONLY` from a demoted one) makes the connection ask
//!   the sentinels again.
//!
//! Every shape gives a [`RedisConn`] that connects lazily, so a node starts while Redis is
//! down and runs degraded until it is up. Errors here never repeat the URL: it may hold a
//! password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Cmd, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, ServerErrorKind, Value,
};

const CLUSTER_SCHEME: &str = "redis+cluster";
const SENTINEL_SCHEME: &str = "redis+sentinel";
/// The port of a cluster seed or a sentinel written without one.
const DEFAULT_PORT: u16 = 6379;
const DEFAULT_SENTINEL_PORT: u16 = 26379;
/// After the sentinels could not name a reachable master, commands fail at once for this
/// long instead of each asking again (a burst of fires would otherwise queue lookups).
const LOOKUP_BACKOFF: Duration = Duration::from_millis(250);

/// A parsed Redis URL.
#[derive(Clone)]
pub enum RedisTarget {
    /// One server.
    Single(ConnectionInfo),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<ConnectionInfo>),
    /// The master named by sentinels.
    Sentinel(SentinelTarget),
}

/// Sentinels and the master they are asked about.
#[derive(Clone)]
pub struct SentinelTarget {
    sentinels: Vec<ConnectionInfo>,
    master: String,
    /// User, password and database for the master (and so for every replica promoted).
    node: redis::RedisConnectionInfo,
}

impl std::fmt::Debug for RedisTarget {
    /// Only the shape and the addresses: never a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs = |infos: &[ConnectionInfo]| {
            infos
                .iter()
                .map(|i| i.addr().to_string())
                .collect::<Vec<_>>()
        };
        match self {
            RedisTarget::Single(info) => write!(f, "Single({})", info.addr()),
            RedisTarget::Cluster(seeds) => write!(f, "Cluster({:?})", addrs(seeds)),
            RedisTarget::Sentinel(s) => {
                write!(
                    f,
                    "Sentinel({:?}, master {:?})",
                    addrs(&s.sentinels),
                    s.master
                )
            }
        }
    }
}

/// Splits `scheme://[userinfo@]hosts[/path]`. The user info ends at the last `@` in the
/// URL, as an unencoded password may hold `@`, `/` or `?`; a host list or a path holds none.
struct UrlParts<'a> {
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: &'a str,
}

fn split_url(rest: &str) -> Result<UrlParts<'_>, String> {
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((u, a)) => (Some(u), a),
        None => (None, rest),
    };
    if after.contains('?') {
        return Err("takes no query parameters".to_owned());
    }
    let (hosts, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i + 1..]),
        None => (after, ""),
    };
    Ok(UrlParts {
        userinfo,
        hosts,
        path,
    })
}

/// `host[:port]` items of a comma-separated list, each checked.
fn host_list(hosts: &str, default_port: u16, what: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err(format!("has an empty {what} address in its host list"));
        }
        // `[v6]:port`, `[v6]`, `name:port` or `name`.
        let port_sep = if host.starts_with('[') {
            host.find(']').and_then(|end| {
                host[end + 1..]
                    .strip_prefix(':')
                    .map(|_| end + 1)
                    .or(Some(usize::MAX))
            })
        } else {
            Some(host.rfind(':').unwrap_or(usize::MAX))
        };
        let Some(sep) = port_sep else {
            return Err(format!(
                "has a {what} address {} with an unclosed [",
                scheduler_core::quoted(host)
            ));
        };
        let (name, port) = if sep == usize::MAX {
            (host, default_port)
        } else {
            let port = &host[sep + 1..];
            let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!(
                    "has a {what} address {} whose port is not a number from 1 to 65535",
                    scheduler_core::quoted(host)
                )
            })?;
            (&host[..sep], port)
        };
        if name.is_empty() || name == "[]" {
            return Err(format!(
                "has a {what} address {} without a host",
                scheduler_core::quoted(host)
            ));
        }
        out.push(format!("{name}:{port}"));
    }
    Ok(out)
}

/// A `redis://` URL for one address, with the user info and path given.
fn node_info(userinfo: Option<&str>, host: &str, path: &str) -> Result<ConnectionInfo, String> {
    let url = match userinfo {
        Some(u) => format!("redis://{u}@{host}/{path}"),
        None => format!("redis://{host}/{path}"),
    };
    url.as_str().into_connection_info().map_err(|e| {
        let why = e.detail().unwrap_or_else(|| e.category()).to_owned();
        format!("has an address redis cannot use: {why}")
    })
}

impl RedisTarget {
    /// Reads a Redis URL of any of the three shapes; the error says what is wrong without
    /// repeating the URL.
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(
                "is not a URL (redis://, rediss://, unix://, redis+cluster:// or \
                        redis+sentinel://)"
                    .to_owned(),
            );
        };
        match scheme {
            "redis" | "rediss" | "unix" | "redis+unix" => redis::Client::open(url)
                .map(|c| RedisTarget::Single(c.get_connection_info().clone()))
                .map_err(|e| {
                    let why = e.detail().unwrap_or_else(|| e.category()).to_owned();
                    format!("is not a usable Redis URL: {why} (is the port a number up to 65535?)")
                }),
            CLUSTER_SCHEME => {
                let parts = split_url(rest)?;
                if !parts.path.is_empty() {
                    return Err("names a database, which a Redis Cluster does not have \
                                (write redis+cluster://host:port,host:port)"
                        .to_owned());
                }
                let seeds = host_list(parts.hosts, DEFAULT_PORT, "cluster node")?
                    .iter()
                    .map(|h| node_info(parts.userinfo, h, ""))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RedisTarget::Cluster(seeds))
            }
            SENTINEL_SCHEME => {
                let parts = split_url(rest)?;
                let mut path = parts.path.split('/');
                let master = path.next().unwrap_or_default();
                if master.is_empty() {
                    return Err("names no master (write \
                                redis+sentinel://host:port,host:port/master-name)"
                        .to_owned());
                }
                let db = path.next().unwrap_or("0");
                if path.next().is_some() {
                    return Err("has a path longer than /master-name/db".to_owned());
                }
                if db.parse::<u16>().is_err() {
                    return Err(format!(
                        "has a database {} that is not a number",
                        scheduler_core::quoted(db)
                    ));
                }
                let sentinels = host_list(parts.hosts, DEFAULT_SENTINEL_PORT, "sentinel")?;
                let node = node_info(parts.userinfo, &sentinels[0], db)?
                    .redis_settings()
                    .clone();
                let sentinels = sentinels
                    .iter()
                    .map(|h| node_info(None, h, ""))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RedisTarget::Sentinel(SentinelTarget {
                    sentinels,
                    master: master.to_owned(),
                    node,
                }))
            }
            _ => Err(format!(
                "has the scheme {}, not redis://, rediss://, unix://, redis+cluster:// or \
                 redis+sentinel://",
                scheduler_core::quoted(scheme)
            )),
        }
    }

    /// A connection that connects on first use and reconnects by itself. Outside a tokio
    /// runtime (which the clients' driver tasks need) every command fails, saying so.
    pub fn connect(&self, connect_timeout: Duration, response_timeout: Duration) -> RedisConn {
        if tokio::runtime::Handle::try_current().is_err() {
            return RedisConn::Broken(RedisError::from((
                ErrorKind::Client,
                "a Redis connection needs a tokio runtime",
            )));
        }
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        match self {
            RedisTarget::Single(info) => {
                let conn = redis::Client::open(info.clone())
                    .and_then(|c| ConnectionManager::new_lazy_with_config(c, manager_config));
                match conn {
                    Ok(conn) => RedisConn::Single(conn),
                    Err(e) => RedisConn::Broken(e),
                }
            }
            RedisTarget::Cluster(seeds) => {
                let client = ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(connect_timeout)
                    .response_timeout(response_timeout)
                    .retries(2)
                    .max_retry_wait(500)
                    .build();
                match client {
                    Ok(client) => {
                        let config = ClusterConfig::new()
                            .set_connection_timeout(connect_timeout)
                            .set_response_timeout(response_timeout);
                        RedisConn::Cluster(client.get_pending_async_connection_with_config(config))
                    }
                    Err(e) => RedisConn::Broken(e),
                }
            }
            RedisTarget::Sentinel(target) => {
                RedisConn::Sentinel(SentinelConn::new(target, connect_timeout, manager_config))
            }
        }
    }

    /// A pub/sub connection. A cluster's first reachable seed will do: a classic `PUBLISH`
    /// reaches every node of a cluster. With sentinels, the current master.
    pub async fn pubsub(&self, connect_timeout: Duration) -> RedisResult<PubSub> {
        let seeds = match self {
            RedisTarget::Single(info) => vec![info.clone()],
            RedisTarget::Cluster(seeds) => seeds.clone(),
            RedisTarget::Sentinel(target) => {
                let mut sentinel = target.client()?;
                let client = with_timeout(connect_timeout * 2, sentinel.async_get_client()).await?;
                vec![client.get_connection_info().clone()]
            }
        };
        let mut last = None;
        for info in seeds {
            let client = redis::Client::open(info)?;
            match with_timeout(connect_timeout, client.get_async_pubsub()).await {
                Ok(pubsub) => return Ok(pubsub),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RedisError::from((ErrorKind::Io, "no Redis address"))))
    }
}

impl SentinelTarget {
    fn client(&self) -> RedisResult<SentinelClient> {
        SentinelClient::build(
            self.sentinels.clone(),
            self.master.clone(),
            Some(
                SentinelNodeConnectionInfo::default().set_redis_connection_info(self.node.clone()),
            ),
            SentinelServerType::Master,
        )
    }
}

async fn with_timeout<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis did not answer in time",
        )))
    })
}

/// A connection to any shape of Redis; cheap to clone (clones share the connection).
#[derive(Clone)]
pub enum RedisConn {
    /// One server, through a reconnecting manager.
    Single(ConnectionManager),
    /// A cluster, through the cluster client (it routes by slot and follows moves).
    Cluster(ClusterConnection),
    /// The sentinels' master.
    Sentinel(SentinelConn),
    /// A client that could not be built; every command answers with why.
    Broken(RedisError),
}

impl RedisConn {
    /// Whether commands on different keys may land on different servers (so a pipeline of
    /// them cannot be sent as one).
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
            RedisConn::Sentinel(c) => c.req_packed_command(cmd),
            RedisConn::Broken(e) => {
                let e = e.clone();
                Box::pin(async move { Err(e) })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Broken(e) => {
                let e = e.clone();
                Box::pin(async move { Err(e) })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
            RedisConn::Sentinel(c) => c.shared.target.node.db(),
            RedisConn::Broken(_) => 0,
        }
    }
}

/// The master the sentinels name, asked again when it stops acting as one.
#[derive(Clone)]
pub struct SentinelConn {
    shared: Arc<SentinelShared>,
}

struct SentinelShared {
    target: SentinelTarget,
    manager_config: ConnectionManagerConfig,
    lookup_timeout: Duration,
    master: Mutex<Master>,
    /// Numbers the master connections, so a late failure on an old one cannot drop a newer.
    connections: AtomicU64,
}

/// A lookup of the master, shared by every command waiting for it; it runs as its own task,
/// so a caller that gives up (a renewal's timeout) does not cancel it for the others.
type Lookup = Shared<BoxFuture<'static, ()>>;

enum Master {
    /// Not asked yet, or forgotten after a failure.
    Unknown,
    /// Being asked.
    Looking(Lookup),
    /// The sentinels' answer: a connection and its number.
    Known(u64, ConnectionManager),
    /// The last lookup failed then: commands fail with its error for [`LOOKUP_BACKOFF`].
    Failed(Instant, RedisError),
}

fn no_master() -> RedisError {
    RedisError::from((ErrorKind::Io, "the sentinels named no master reachable now"))
}

/// Whether an error says the connection no longer reaches a master.
fn master_gone(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
        // A script's write on a demoted master: `ERR ... READONLY ...` before Redis 7.
        || e.detail().is_some_and(|d| d.contains("READONLY"))
}

impl SentinelConn {
    fn new(
        target: &SentinelTarget,
        connect_timeout: Duration,
        manager_config: ConnectionManagerConfig,
    ) -> SentinelConn {
        SentinelConn {
            shared: Arc::new(SentinelShared {
                target: target.clone(),
                manager_config,
                lookup_timeout: connect_timeout,
                master: Mutex::new(Master::Unknown),
                connections: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Master> {
        self.shared.master.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The master's connection: the known one, or the answer of a lookup (started here if
    /// none is under way).
    async fn master(&self) -> RedisResult<(u64, ConnectionManager)> {
        let lookup = {
            let mut state = self.state();
            match &*state {
                Master::Known(n, conn) => return Ok((*n, conn.clone())),
                Master::Failed(at, e) if at.elapsed() < LOOKUP_BACKOFF => return Err(e.clone()),
                Master::Looking(lookup) => lookup.clone(),
                Master::Unknown | Master::Failed(..) => {
                    let lookup = self.start_lookup();
                    *state = Master::Looking(lookup.clone());
                    lookup
                }
            }
        };
        lookup.clone().await;
        let mut state = self.state();
        match &*state {
            Master::Known(n, conn) => Ok((*n, conn.clone())),
            Master::Failed(_, e) => Err(e.clone()),
            Master::Looking(current) => {
                // Ended without an answer (its task was cancelled): the next command asks again.
                if current.ptr_eq(&lookup) {
                    *state = Master::Unknown;
                }
                Err(no_master())
            }
            Master::Unknown => Err(no_master()),
        }
    }

    fn start_lookup(&self) -> Lookup {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let found = async {
                let mut sentinel = shared.target.client()?;
                let client =
                    with_timeout(shared.lookup_timeout, sentinel.async_get_client()).await?;
                ConnectionManager::new_lazy_with_config(client, shared.manager_config.clone())
            }
            .await;
            let mut state = shared.master.lock().unwrap_or_else(|p| p.into_inner());
            *state = match found {
                Ok(conn) => Master::Known(shared.connections.fetch_add(1, Ordering::Relaxed), conn),
                Err(e) => Master::Failed(Instant::now(), e),
            };
        });
        let done: BoxFuture<'static, ()> = Box::pin(async move {
            // A lookup task cannot panic short of a bug in the client; its end is all
            // that matters here, and a missing answer reads as a failed lookup.
            let _ = task.await;
        });
        done.shared()
    }

    /// Forgets the master's connection if it is still number `n`: the next command asks the
    /// sentinels.
    fn forget(&self, n: u64) {
        let mut state = self.state();
        if matches!(&*state, Master::Known(known, _) if *known == n) {
            *state = Master::Unknown;
        }
    }

    fn run<'a, T: Send + 'a>(
        &'a self,
        call: impl FnOnce(ConnectionManager) -> BoxFuture<'a, RedisResult<T>> + Send + 'a,
    ) -> BoxFuture<'a, RedisResult<T>> {
        Box::pin(async move {
            let (n, conn) = self.master().await?;
            let answer = call(conn).await;
            if let Err(e) = &answer
                && master_gone(e)
            {
                self.forget(n);
            }
            answer
        })
    }

    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.run(move |mut conn| Box::pin(async move { conn.req_packed_command(cmd).await }))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.run(move |mut conn| {
            Box::pin(async move { conn.req_packed_commands(pipeline, offset, count).await })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(url: &str) -> String {
        match RedisTarget::parse(url) {
            Ok(t) => panic!("{url} parsed as {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_shape_parses_with_its_defaults() {
        let single = RedisTarget::parse("redis://:pw@127.0.0.1:6380/2").expect("one server");
        assert_eq!(format!("{single:?}"), "Single(127.0.0.1:6380)");
        let cluster =
            RedisTarget::parse("redis+cluster://:pw@127.0.0.1:7001,127.0.0.1:7002,127.0.0.1")
                .expect("a cluster");
        assert_eq!(
            format!("{cluster:?}"),
            r#"Cluster(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:6379"])"#
        );
        let RedisTarget::Cluster(seeds) = cluster else {
            unreachable!()
        };
        assert!(
            seeds
                .iter()
                .all(|s| s.redis_settings().password() == Some("pw"))
        );
        let sentinel = RedisTarget::parse("redis+sentinel://u:p%40ss@127.0.0.1,[::1]:26380/main/3")
            .expect("sentinels");
        assert_eq!(
            format!("{sentinel:?}"),
            r#"Sentinel(["127.0.0.1:26379", "::1:26380"], master "main")"#
        );
        let RedisTarget::Sentinel(s) = sentinel else {
            unreachable!()
        };
        assert_eq!(s.node.username(), Some("u"));
        assert_eq!(s.node.password(), Some("p@ss"));
        assert_eq!(s.node.db(), 3);
        // The sentinels are asked without the master's password.
        assert!(
            s.sentinels
                .iter()
                .all(|i| i.redis_settings().password().is_none())
        );
    }

    #[test]
    fn bad_urls_are_named_without_their_password() {
        for (url, says) in [
            ("localhost:6379", "is not a URL"),
            ("http://:hunter2@127.0.0.1", "\"http\""),
            (
                "redis+cluster://:hunter2@127.0.0.1:7001,,127.0.0.1:7002",
                "empty cluster node",
            ),
            (
                "redis+cluster://:hunter2@127.0.0.1:70001",
                "\"127.0.0.1:70001\"",
            ),
            ("redis+cluster://:hunter2@127.0.0.1:7001/0", "does not have"),
            ("redis+cluster://:hunter2@127.0.0.1:7001?x=1", "no query"),
            (
                "redis+sentinel://:hunter2@127.0.0.1:26379",
                "names no master",
            ),
            (
                "redis+sentinel://:hunter2@127.0.0.1:26379/",
                "names no master",
            ),
            (
                "redis+sentinel://:hunter2@127.0.0.1:26379/m/x",
                "database \"x\"",
            ),
            ("redis+sentinel://:hunter2@127.0.0.1:26379/m/0/1", "longer"),
            ("redis+sentinel://:hunter2@:26379/m", "without a host"),
            ("redis+sentinel://:hunter2@[::1:26379/m", "unclosed"),
            ("redis://:hunter2@127.0.0.1:99999", "not a usable Redis URL"),
        ] {
            let e = parse_err(url);
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }
}
