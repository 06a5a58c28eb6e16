//! The bench's nodes: one in this process, or `--nodes K` worker processes that each start a
//! node, take the window from stdin and report what they saw as one JSON line.

use std::process::ExitCode;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use scheduler_actors::{GetMetrics, NodeBuilder, NodeConfig};

use super::measure::{RedisCalls, Window, cpu_seconds, redis_calls_in, rss};
use super::{BenchArgs, BenchHandler, Seen};

/// What one node saw and used.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct NodeRun {
    pub(super) window: Window,
    pub(super) startup: Duration,
    pub(super) rss_baseline: u64,
    pub(super) rss_started: u64,
    pub(super) peak_rss: u64,
    pub(super) cpu: f64,
    /// Fires its handler ran (workers only; in-process fires are in the shared notes).
    pub(super) notes: Vec<(u32, i64, f64)>,
    /// Alerts by outcome.
    #[serde(default)]
    pub(super) alerts: std::collections::BTreeMap<String, u64>,
    /// Claims sent to the database during the window.
    #[serde(default)]
    pub(super) claims: u64,
    /// Run records the node gave up because its write buffer was full.
    #[serde(default)]
    pub(super) writes_dropped: u64,
}

pub(super) fn node_config(db_url: &str, redis_url: Option<String>, node_id: &str) -> NodeConfig {
    NodeConfig {
        database_url: db_url.to_owned(),
        redis_url,
        http_bind: None,
        demo_enabled: false,
        node_id: Some(node_id.to_owned()),
        ..NodeConfig::default()
    }
}

/// One alert route, on every failed run, to a loopback port that accepts connections and never
/// answers (held open by a thread for the life of the process).
pub(super) fn dead_receiver_alerts() -> anyhow::Result<scheduler_actors::alerts::AlertConfig> {
    use scheduler_actors::alerts::{AlertConfig, AlertRoute, AlertRouteSpec};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("a loopback port")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let route = AlertRoute::from_spec(
        "bench",
        AlertRouteSpec {
            name: "dead".to_owned(),
            url,
            format: "json".to_owned(),
            on: Some(vec!["failed".to_owned()]),
            secret: Some("bench-secret-0123456789".to_owned()),
            // The default throttle (5 minutes per task), as a route is usually configured.
            ..AlertRouteSpec::default()
        },
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(AlertConfig {
        routes: vec![route],
        ..AlertConfig::default()
    })
}

/// A started node and what it cost to start.
pub(super) struct StartedNode {
    node: scheduler_actors::Node,
    startup: Duration,
    rss_baseline: u64,
    rss_started: u64,
}

pub(super) async fn start_node(
    config: NodeConfig,
    handler: Arc<BenchHandler>,
) -> anyhow::Result<StartedNode> {
    let rss_baseline = rss().0;
    let node_started = Instant::now();
    let node = NodeBuilder::new(config)
        .handler("cronmesh::bench", handler)
        .start()
        .await?;
    // The scheduler computes every first fire when it starts; a reply means it has.
    node.scheduler().send(GetMetrics).await?;
    Ok(StartedNode {
        node,
        startup: node_started.elapsed(),
        rss_baseline,
        rss_started: rss().0,
    })
}

impl StartedNode {
    /// Runs through the window, then stops the node.
    pub(super) async fn measure(self, window: Window) -> anyhow::Result<NodeRun> {
        tokio::time::sleep(Window::until(window.start_ms)).await;
        let cpu_start = cpu_seconds();
        let claims_start = self.node.metrics().claims_attempted_total;
        tokio::time::sleep(Window::until(window.end_ms)).await;
        let cpu = cpu_seconds() - cpu_start;
        let claims = self.node.metrics().claims_attempted_total - claims_start;
        let peak_rss = rss().1;
        // Let the window's last fires finish before the shutdown stops new ones.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let alerts = self.node.metrics().alerts_total;
        let handle = self.node.handle();
        self.node.shutdown().await?;
        // Counted to the end of the shutdown's flush.
        let writes_dropped = handle.metrics().persistence_dropped_writes;
        Ok(NodeRun {
            alerts,
            claims,
            writes_dropped,
            window,
            startup: self.startup,
            rss_baseline: self.rss_baseline,
            rss_started: self.rss_started,
            peak_rss,
            cpu,
            notes: Vec::new(),
        })
    }
}

/// One `--nodes` worker: start a node, say so, take the window from stdin, run through it,
/// and print what it saw as one JSON line.
pub(super) fn worker(
    node_id: &str,
    db_url: &str,
    redis_url: Option<String>,
    handler: Arc<BenchHandler>,
    seen: &Seen,
) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, Write};
    let system = actix::System::new();
    let config = node_config(db_url, redis_url, node_id);
    let run = system.block_on(async move {
        let started = start_node(config, handler).await?;
        println!("{}", serde_json::json!({ "started": true }));
        std::io::stdout().flush()?;
        // Read off the actor thread: the node keeps running while the others start.
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|_| line)
        })
        .await??;
        let window: Window = serde_json::from_str(&line).context("window from the bench")?;
        started.measure(window).await
    });
    crate::commands::run::drop_system(system);
    let mut run = run?;
    run.notes = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    println!("{}", serde_json::to_string(&run)?);
    Ok(ExitCode::SUCCESS)
}

/// Starts `--nodes` worker processes, gives them one window once all have started, and
/// collects what each saw.
pub(super) fn run_workers(
    args: &BenchArgs,
    db_url: &str,
) -> anyhow::Result<(Vec<NodeRun>, RedisCalls)> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("path of this executable")?;
    let mut children = Vec::new();
    for i in 0..args.nodes {
        let mut child = Command::new(&exe)
            .args(["bench", "--worker", &format!("bench-{i}")])
            .args(["--tasks", &args.tasks.to_string()])
            .args(["--duration", &args.duration.to_string()])
            .args(["--handler", &args.handler, "--lock", &args.lock])
            .args(["--redis-url", &args.redis_url, "--db", db_url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting bench node {i}"))?;
        let stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
        children.push((child, stdout));
    }
    for i in 0..children.len() {
        let mut line = String::new();
        let read = children[i].1.read_line(&mut line);
        if read.is_err() || !line.contains("started") {
            // Do not leave the others waiting for a window that will not come.
            for (child, _) in &mut children {
                let _ = child.kill();
                let _ = child.wait();
            }
            anyhow::bail!("bench node {i} did not start (see its error above)");
        }
    }
    let window = Window::after(Utc::now(), args.duration);
    let calls = redis_calls_in(Some(args.redis_url.clone()), window);
    for (child, _) in &mut children {
        let stdin = child.stdin.as_mut().context("worker stdin")?;
        writeln!(stdin, "{}", serde_json::to_string(&window)?)?;
    }
    let mut runs = Vec::new();
    for (i, (mut child, mut out)) in children.into_iter().enumerate() {
        let mut line = String::new();
        out.read_line(&mut line)?;
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "bench node {i} failed: {status}");
        runs.push(
            serde_json::from_str(&line).with_context(|| format!("report of bench node {i}"))?,
        );
    }
    Ok((runs, calls))
}
