//! A private `redis-server` per test on a free loopback port, so a test may kill, pause and
//! restart it without touching the shared one; and the two bigger shapes made of them: a
//! three-master Redis Cluster, and a master with a replica watched by a sentinel.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::node::free_port;

/// A redis-server child process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    /// `redis-server` arguments beyond port, bind and persistence.
    extra: Vec<String>,
    /// Its working directory: a replica saves the copy it receives there, and that file
    /// must never be where the next server starts.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        Self::start_with(None)
    }

    /// Starts one that requires `password` (its URL carries it).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_with(Some(password.to_owned()))
    }

    fn start_with(password: Option<String>) -> RedisServer {
        Self::start_with_args(password, Vec::new())
    }

    fn start_with_args(password: Option<String>, extra: Vec<String>) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            password,
            extra,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut args = vec![
            "--port".to_owned(),
            self.port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--save".to_owned(),
            String::new(),
            "--appendonly".to_owned(),
            "no".to_owned(),
            "--dir".to_owned(),
            self.dir.path().display().to_string(),
        ];
        if let Some(password) = &self.password {
            args.extend(["--requirepass".to_owned(), password.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server on port {} did not come up", self.port);
    }

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills it (SIGKILL): every key is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Milliseconds `key` has left (-2: absent, -1: no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.conn())
            .expect("PTTL")
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("redis connection")
    }

    /// How many times it has run `command` (lowercase), from `INFO commandstats`.
    pub fn calls_of(&self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn())
            .expect("INFO commandstats");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("a call count"))
    }

    /// Its answer to `cmd` with `args`.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &str, args: &[&str]) -> T {
        redis::cmd(cmd)
            .arg(args)
            .query(&mut self.conn())
            .unwrap_or_else(|e| panic!("{cmd} {args:?} on port {}: {e}", self.port))
    }
}

/// Three masters on loopback ports, made a Redis Cluster by `redis-cli --cluster create`.
pub struct RedisCluster {
    /// The masters.
    pub masters: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the three and waits until the cluster reports `cluster_state:ok` on each.
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let masters: Vec<RedisServer> = (0..3)
            .map(|i| {
                let extra = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &free_port().to_string(),
                    "--cluster-config-file",
                    &dir.path().join(format!("nodes-{i}.conf")).to_string_lossy(),
                    "--cluster-node-timeout",
                    "2000",
                ]
                .map(str::to_owned)
                .to_vec();
                RedisServer::start_with_args(None, extra)
            })
            .collect();
        let addrs: Vec<String> = masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is installed (scripts/services.sh installs it)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !masters.iter().all(|m| {
            m.query::<String>("CLUSTER", &["INFO"])
                .contains("cluster_state:ok")
        }) {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { masters, _dir: dir }
    }

    /// The `redis+cluster://` URL listing every master.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self
            .masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        format!("redis+cluster://{}", addrs.join(","))
    }
}

/// A master, its replica, and one sentinel watching them (quorum 1, a master is down after
/// 1 s without an answer), on loopback ports.
pub struct SentinelSet {
    /// The master at start.
    pub master: RedisServer,
    /// Its replica, promoted when the master goes.
    pub replica: RedisServer,
    sentinel: Option<Child>,
    sentinel_port: u16,
    _dir: tempfile::TempDir,
}

/// The name the sentinel knows the master by.
pub const SENTINEL_MASTER: &str = "cm";

impl SentinelSet {
    /// Starts the three and waits until the sentinel knows the replica (a failover needs one).
    pub fn start() -> SentinelSet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let master = RedisServer::start();
        let replica = RedisServer::start_with_args(
            None,
            ["--replicaof", "127.0.0.1", &master.port.to_string()]
                .map(str::to_owned)
                .to_vec(),
        );
        wait_until("the replica to sync", || {
            replica
                .query::<String>("INFO", &["replication"])
                .contains("master_link_status:up")
        });
        let sentinel_port = free_port();
        let conf = dir.path().join("sentinel.conf");
        write_sentinel_conf(&conf, sentinel_port, master.port);
        let sentinel = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services.sh installs it)");
        let set = SentinelSet {
            master,
            replica,
            sentinel: Some(sentinel),
            sentinel_port,
            _dir: dir,
        };
        wait_until("the sentinel to know the replica", || {
            set.sentinel_query(&["REPLICAS", SENTINEL_MASTER])
                .is_ok_and(|r: Vec<Vec<String>>| {
                    r.iter().any(|fields| {
                        fields
                            .windows(2)
                            .any(|kv| kv[0] == "flags" && kv[1] == "slave")
                    })
                })
        });
        set
    }

    fn sentinel_query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}", self.sentinel_port))?
            .get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("SENTINEL").arg(args).query(&mut conn)
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self) -> Option<u16> {
        let addr: Vec<String> = self
            .sentinel_query(&["GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER])
            .ok()?;
        addr.get(1)?.parse().ok()
    }

    /// The `redis+sentinel://` URL.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{SENTINEL_MASTER}",
            self.sentinel_port
        )
    }
}

fn write_sentinel_conf(path: &Path, port: u16, master_port: u16) {
    std::fs::write(
        path,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
             sentinel failover-timeout {SENTINEL_MASTER} 5000\n",
            dir = path.parent().expect("a directory").display()
        ),
    )
    .expect("the sentinel's config file");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        if let Some(mut child) = self.sentinel.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
