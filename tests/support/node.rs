//! Nodes as separate processes of the real `cronmesh` binary, and waiting on conditions.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use entity::task_run;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sea_orm::DatabaseConnection;
use store::RunFilter;

use super::cronmesh_bin;

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `cronmesh run` process in its own directory (SQLite `cronmesh.db` there).
pub struct NodeProcess {
    child: Option<Child>,
    /// Its admin URL.
    pub url: String,
    log: PathBuf,
}

impl NodeProcess {
    /// Starts a node in `dir` with the demo task off, fast heartbeats and a free admin port;
    /// `env` adds or overrides `CRONMESH__*` settings. Waits until /healthz answers.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> NodeProcess {
        Self::start_with_args(dir, &[], env)
    }

    /// Like [`NodeProcess::start`], with arguments after `cronmesh run` (`--shadow`).
    pub fn start_with_args(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut with_bind = vec![("CRONMESH__HTTP__BIND", bind.as_str())];
        with_bind.extend_from_slice(env);
        Self::spawn(dir, &format!("http://{bind}"), args, &with_bind)
    }

    /// Like [`NodeProcess::start`], for a node whose `env` sets `CRONMESH__HTTP__BIND`
    /// itself; `url` is where the test reaches its admin server (always loopback).
    pub fn start_at(dir: &Path, url: &str, env: &[(&str, &str)]) -> NodeProcess {
        Self::spawn(dir, url, &[], env)
    }

    fn spawn(dir: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> NodeProcess {
        let port = url.rsplit(':').next().unwrap_or("0");
        let log = dir.join(format!("node-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(cronmesh_bin());
        cmd.arg("run")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (k, _) in std::env::vars() {
            if k.starts_with("CRONMESH__") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CRONMESH__DEMO__ENABLED", "false")
            .env("CRONMESH__NODE__HEARTBEAT_SECS", "1")
            .env("CRONMESH__NODE__TIMEOUT_SECS", "3")
            .env("RUST_LOG", "info");
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().expect("cronmesh run starts");
        let node = NodeProcess {
            child: Some(child),
            url: url.to_owned(),
            log,
        };
        node.wait_healthy();
        node
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.url);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(self.url.trim_start_matches("http://")).is_ok()
                && reqwest_blocking_ok(&url)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not become healthy; log:\n{}", self.log());
    }

    /// Everything the node logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The node's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().map_or(0, |c| c.id() as i32))
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal the node");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node did not exit in {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(30))
    }

    /// Like [`NodeProcess::stop`], and copies the log to `node.log` in the log's directory.
    pub fn stop_keeping_log(self) -> ExitStatus {
        let log = self.log.clone();
        let status = self.stop();
        if let Some(dir) = log.parent() {
            let _ = std::fs::copy(&log, dir.join("node.log"));
        }
        status
    }
}

fn reqwest_blocking_ok(url: &str) -> bool {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()
            .and_then(|rt| rt.block_on(async { reqwest::get(&url).await.ok() }))
            .is_some_and(|r| r.status().is_success())
    })
    .join()
    .unwrap_or(false)
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The SQLite database of a node directory.
pub async fn node_db(dir: &Path) -> DatabaseConnection {
    store::connect(&format!("sqlite://{}", dir.join("cronmesh.db").display()))
        .await
        .expect("node database")
}

/// Every run of `task`, oldest fire first.
pub async fn runs_of(db: &DatabaseConnection, task: &str) -> Vec<task_run::Model> {
    let mut runs = store::list_runs(
        db,
        &RunFilter {
            task: Some(task.to_owned()),
            status: None,
            limit: 100_000,
            ..Default::default()
        },
    )
    .await
    .expect("list runs");
    runs.reverse();
    runs
}

/// Polls `check` until it returns `Some` or `within` passes (then panics with `what`).
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
