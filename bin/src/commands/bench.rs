//! `cronmesh bench`: a node in this process against a real database and lock, N tasks firing
//! every second, and what came of it: lateness, throughput, memory, start-up, CPU.
//!
//! Every fire runs the bench handler, which notes the fire and how late it started. After the
//! run the notes are compared with the schedule (expected, missing, duplicates) and with the
//! `task_run` rows (recorded).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use scheduler_actors::{
    GetMetrics, NodeBuilder, NodeConfig, TaskContext, TaskFailure, TaskHandler,
};
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, Trigger};

use crate::cli::InvalidInput;

/// Arguments of `cronmesh bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Tasks firing every second.
    #[arg(long, default_value_t = 1000)]
    tasks: u32,
    /// Seconds measured (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u32,
    /// Offsets spread evenly over the second (the default).
    #[arg(long, conflicts_with_all = ["burst", "minutely"])]
    spread: bool,
    /// All tasks on the same second boundary.
    #[arg(long, conflicts_with = "minutely")]
    burst: bool,
    /// All tasks on the top of every minute (`0 * * * * *`): the crowded instant of real cron
    /// load. A 60-second window holds one such instant.
    #[arg(long)]
    minutely: bool,
    /// Extra registered tasks that fire daily (idle), for memory and start-up at scale.
    #[arg(long, default_value_t = 0)]
    idle: u32,
    /// Handler: noop, sleep:MS, or fail (every run fails: with --alert-dead-receiver, every
    /// fire raises an alert).
    #[arg(long, default_value = "noop")]
    handler: String,
    /// Alerts on every failed run to a receiver on a loopback port that accepts and never
    /// answers (one node only): shows that a dead webhook does not slow fires.
    #[arg(long)]
    alert_dead_receiver: bool,
    /// Lock backend: memory or redis.
    #[arg(long, default_value = "memory")]
    lock: String,
    /// Redis URL for --lock redis.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Database URL (default: a fresh SQLite file in a temporary directory). Earlier bench
    /// tasks and runs in it are deleted first.
    #[arg(long)]
    db: Option<String>,
    /// Run K nodes, each its own `cronmesh` process, against the shared database and lock
    /// (needs `--lock redis` and a `--db` every process can reach). The report then also says
    /// whether any fire ran on two nodes.
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Internal: this process is one of the `--nodes` workers (talks JSON lines on stdio).
    #[arg(long, hide = true)]
    worker: Option<String>,
}

/// What the bench handler saw: (task index, fire ms, lateness ms).
type Seen = Arc<Mutex<Vec<(u32, i64, f64)>>>;

struct BenchHandler {
    seen: Seen,
    sleep: Option<Duration>,
    fail: bool,
}

impl TaskHandler for BenchHandler {
    fn run(&self, ctx: TaskContext) -> scheduler_actors::TaskFuture {
        let late_ms = (Utc::now() - ctx.fire_time)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 1000.0;
        let index = ctx
            .task
            .rsplit('t')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(u32::MAX);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((index, ctx.fire_time.timestamp_millis(), late_ms));
        let (sleep, fail) = (self.sleep, self.fail);
        Box::pin(async move {
            if let Some(d) = sleep {
                tokio::time::sleep(d).await;
            }
            if fail {
                return Err(TaskFailure::new("bench: this handler fails on purpose"));
            }
            Ok::<_, TaskFailure>(scheduler_actors::TaskOutput::default())
        })
    }
}

/// Resident memory (current, peak) in bytes, from /proc.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Every bench task's name starts with this; a run first removes what an earlier one left.
const BENCH_PREFIX: &str = "bench.";

fn bench_name(i: u32) -> String {
    format!("{BENCH_PREFIX}t{i:07}")
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let fail = args.handler == "fail";
    let sleep = match args.handler.as_str() {
        "noop" | "fail" => None,
        other => match other.strip_prefix("sleep:").map(str::parse::<u64>) {
            Some(Ok(ms)) => Some(Duration::from_millis(ms)),
            _ => anyhow::bail!(InvalidInput(format!(
                "--handler {other:?} is not noop, sleep:MS or fail"
            ))),
        },
    };
    if args.alert_dead_receiver && args.nodes > 1 {
        anyhow::bail!(InvalidInput(
            "--alert-dead-receiver runs one node; leave out --nodes".to_owned()
        ));
    }
    let redis_url = match args.lock.as_str() {
        "memory" => None,
        "redis" => Some(args.redis_url.clone()),
        other => anyhow::bail!(InvalidInput(format!(
            "--lock {other:?} is not memory or redis"
        ))),
    };
    if args.tasks == 0 || args.duration == 0 {
        anyhow::bail!(InvalidInput(
            "--tasks and --duration must be at least 1".to_owned()
        ));
    }
    let temp = tempfile::tempdir().context("temporary directory")?;
    let db_url = args
        .db
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("bench.db").display()));
    let seen: Seen = Arc::new(Mutex::new(Vec::with_capacity(
        args.tasks as usize * (args.duration as usize + 3),
    )));
    let handler = Arc::new(BenchHandler {
        seen: seen.clone(),
        sleep,
        fail,
    });
    let tasks = args.tasks;
    let idle = args.idle;
    let shape = if args.minutely {
        Shape::Minutely
    } else if args.burst {
        Shape::Burst
    } else {
        Shape::Spread
    };
    let duration = args.duration;

    if let Some(node_id) = &args.worker {
        return worker(node_id, &db_url, redis_url, handler, &seen);
    }
    if args.nodes == 0 {
        anyhow::bail!(InvalidInput("--nodes must be at least 1".to_owned()));
    }
    if args.nodes > 1 && (redis_url.is_none() || args.db.is_none()) {
        anyhow::bail!(InvalidInput(format!(
            "--nodes {} needs --lock redis and a --db that every node process can reach",
            args.nodes
        )));
    }

    let system = actix::System::new();
    let db = system.block_on(async {
        let db = store::connect(&db_url).await?;
        store::migrate(&db).await?;
        store::remove_runs_with_prefix(&db, BENCH_PREFIX).await?;
        store::remove_tasks_with_prefix(&db, BENCH_PREFIX).await?;
        // Earlier runs leave millions of dead rows behind; without this every run on the
        // same database would be measured against a bigger, slower table.
        store::vacuum(&db).await?;
        // A thousand at a time: a million declarations at once would be measured as the
        // node's peak memory.
        let total = tasks + idle;
        let mut start = 0;
        while start < total {
            let end = total.min(start + 1000);
            store::insert_runtime_tasks(&db, &bench_tasks(start..end, tasks, shape)?).await?;
            start = end;
        }
        Ok::<_, anyhow::Error>(db)
    })?;
    let created = started.elapsed();

    let counted_redis = redis_url.clone();
    let (runs, redis_calls): (Vec<NodeRun>, RedisCalls) = if args.nodes == 1 {
        let mut config = node_config(&db_url, redis_url, "bench");
        if args.alert_dead_receiver {
            config.alerts = dead_receiver_alerts()?;
        }
        let (run, calls) = system.block_on(async move {
            let node = start_node(config, handler).await?;
            let window = Window::after(Utc::now(), duration);
            let calls = redis_calls_in(counted_redis, window);
            Ok::<_, anyhow::Error>((node.measure(window).await?, calls))
        })?;
        (vec![run], calls)
    } else {
        run_workers(args, &db_url)?
    };
    let redis_calls = redis_calls.join().ok().flatten();
    let window = runs[0].window;
    let (by_status, still_running) = system.block_on(async move {
        let by_status =
            store::count_runs_by_status(&db, BENCH_PREFIX, window.start_ms, window.end_ms).await?;
        // Every node has stopped: a run still `running` is one whose outcome was lost.
        let still_running = store::count_running(&db, BENCH_PREFIX).await?;
        // Closed inside the runtime: the pool cannot be dropped outside it.
        db.close().await?;
        Ok::<_, anyhow::Error>((by_status, still_running))
    })?;
    let recorded = by_status.get("succeeded").copied().unwrap_or(0);
    let rows: u64 = by_status.values().sum();
    crate::commands::run::drop_system(system);

    // Fires seen by every node, in-process ones through the shared notes.
    let mut seen_all = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    let mut startup = Duration::ZERO;
    let (mut rss_started, mut peak_rss, mut cpu, mut claims, mut dropped) = (0, 0, 0.0, 0, 0);
    let mut alerts: std::collections::BTreeMap<String, u64> = Default::default();
    for run in runs {
        for (outcome, n) in &run.alerts {
            *alerts.entry(outcome.clone()).or_default() += n;
        }
        seen_all.extend(run.notes);
        startup = startup.max(run.startup);
        rss_started += run.rss_started.saturating_sub(run.rss_baseline);
        peak_rss += run.peak_rss;
        cpu += run.cpu;
        claims += run.claims;
        dropped += run.writes_dropped;
    }
    let (ws, we) = (window.start_ms, window.end_ms);
    let mut per_fire: HashMap<(u32, i64), u32> = HashMap::new();
    let mut lateness: Vec<f64> = Vec::new();
    // Lateness per 10-second slice of the window, to see whether it grows.
    let mut slices: Vec<Vec<f64>> = vec![Vec::new(); duration.div_ceil(10) as usize];
    for (task, fire, late) in seen_all
        .into_iter()
        .filter(|(_, f, _)| (ws..we).contains(f))
    {
        *per_fire.entry((task, fire)).or_default() += 1;
        lateness.push(late);
        if let Some(slice) = slices.get_mut(((fire - ws) / 10_000) as usize) {
            slice.push(late);
        }
    }
    lateness.sort_by(f64::total_cmp);
    // Runs started per slice: a slice short of its fires shows where a node fell behind.
    let runs_per_10s: Vec<usize> = slices.iter().map(Vec::len).collect();
    let p99_per_10s: Vec<f64> = slices
        .iter_mut()
        .map(|s| {
            s.sort_by(f64::total_cmp);
            percentile(s, 99.0)
        })
        .collect();
    let expected = u64::from(tasks) * shape.instants_in(window);
    let distinct = per_fire.len() as u64;
    let duplicates: u64 = per_fire.values().map(|n| u64::from(n - 1)).sum();
    let registered = u64::from(tasks) + u64::from(idle);
    let out = serde_json::json!({
        "tasks": tasks,
        "idle_tasks": idle,
        "duration_s": duration,
        "mode": shape.name(),
        "nodes": args.nodes,
        "fires_expected": expected,
        "runs_recorded": recorded,
        "runs_by_status": by_status,
        "fires_without_a_row": expected.saturating_sub(rows),
        "runs_still_running_after_stop": still_running,
        "writes_dropped": dropped,
        "duplicates": duplicates,
        "missing": expected.saturating_sub(distinct),
        "lateness_ms": {
            "p50": percentile(&lateness, 50.0),
            "p90": percentile(&lateness, 90.0),
            "p99": percentile(&lateness, 99.0),
            "max": lateness.last().copied().unwrap_or(0.0),
        },
        "p99_ms_per_10s": p99_per_10s,
        "runs_per_10s": runs_per_10s,
        "fires_per_s": distinct as f64 / f64::from(duration),
        "peak_rss_mb": peak_rss as f64 / 1_048_576.0,
        "rss_per_task_bytes": rss_started / registered.max(1),
        "startup_ms": startup.as_secs_f64() * 1000.0,
        "tasks_created_ms": created.as_secs_f64() * 1000.0,
        "cpu_s_per_1k_fires": if distinct == 0 { 0.0 } else { cpu / (distinct as f64 / 1000.0) },
        // Per fire of the window, over every node: what the cluster's work per fire is.
        "claim_attempts_per_fire": claims as f64 / expected.max(1) as f64,
        "redis_commands_per_fire": redis_calls.map(|n| n as f64 / expected.max(1) as f64),
        "alerts": alerts,
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// When the bench tasks fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Every second, offsets spread evenly over the second.
    Spread,
    /// Every second, all on the second boundary.
    Burst,
    /// All on the top of every minute.
    Minutely,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Spread => "spread",
            Shape::Burst => "burst",
            Shape::Minutely => "minutely",
        }
    }

    /// Instants each task fires at within the window.
    fn instants_in(self, window: Window) -> u64 {
        let (start, end) = (window.start_ms, window.end_ms);
        let every = match self {
            Shape::Spread | Shape::Burst => 1_000,
            Shape::Minutely => 60_000,
        };
        // Instants k * every in [start, end) (window edges are whole seconds).
        let first = start.div_euclid(every) + i64::from(start.rem_euclid(every) != 0);
        let last = (end - 1).div_euclid(every);
        (last - first + 1).max(0) as u64
    }
}

/// The measured seconds: whole seconds, starting after a warm-up second.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Window {
    start_ms: i64,
    end_ms: i64,
}

impl Window {
    fn after(now: DateTime<Utc>, duration: u32) -> Self {
        let start_ms = (now.timestamp() + 2) * 1000;
        Window {
            start_ms,
            end_ms: start_ms + i64::from(duration) * 1000,
        }
    }

    fn until(at_ms: i64) -> Duration {
        Duration::from_millis((at_ms - Utc::now().timestamp_millis()).max(0) as u64)
    }
}

/// What one node saw and used.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NodeRun {
    window: Window,
    startup: Duration,
    rss_baseline: u64,
    rss_started: u64,
    peak_rss: u64,
    cpu: f64,
    /// Fires its handler ran (workers only; in-process fires are in the shared notes).
    notes: Vec<(u32, i64, f64)>,
    /// Alerts by outcome.
    #[serde(default)]
    alerts: std::collections::BTreeMap<String, u64>,
    /// Claims sent to the database during the window.
    #[serde(default)]
    claims: u64,
    /// Run records the node gave up because its write buffer was full.
    #[serde(default)]
    writes_dropped: u64,
}

fn node_config(db_url: &str, redis_url: Option<String>, node_id: &str) -> NodeConfig {
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
fn dead_receiver_alerts() -> anyhow::Result<scheduler_actors::alerts::AlertConfig> {
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
struct StartedNode {
    node: scheduler_actors::Node,
    startup: Duration,
    rss_baseline: u64,
    rss_started: u64,
}

async fn start_node(config: NodeConfig, handler: Arc<BenchHandler>) -> anyhow::Result<StartedNode> {
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
    async fn measure(self, window: Window) -> anyhow::Result<NodeRun> {
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
fn worker(
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
fn run_workers(args: &BenchArgs, db_url: &str) -> anyhow::Result<(Vec<NodeRun>, RedisCalls)> {
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

/// Commands the Redis server ran during the window, once it is over (`None` without Redis, or
/// when it could not be asked).
type RedisCalls = std::thread::JoinHandle<Option<u64>>;

/// Counts the commands the Redis at `url` runs during `window` (`INFO commandstats` at its
/// start and end, every client's commands: the nodes' locks, renewals, releases, notices).
fn redis_calls_in(url: Option<String>, window: Window) -> RedisCalls {
    std::thread::spawn(move || {
        let client = redis::Client::open(url?.as_str()).ok()?;
        let mut conn = client.get_connection().ok()?;
        let mut calls = || -> Option<u64> {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut conn)
                .ok()?;
            Some(
                info.lines()
                    .filter_map(|l| l.split("calls=").nth(1))
                    .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
                    .sum(),
            )
        };
        std::thread::sleep(Window::until(window.start_ms));
        let start = calls()?;
        std::thread::sleep(Window::until(window.end_ms));
        Some(calls()?.saturating_sub(start))
    })
}

/// Bench tasks `range`: those below `tasks` fire as `shape` says (interval triggers anchored at
/// offsets spread over the second or all on the second, or a cron trigger on the minute), the
/// rest daily.
fn bench_tasks(
    range: std::ops::Range<u32>,
    tasks: u32,
    shape: Shape,
) -> anyhow::Result<Vec<TaskDecl>> {
    let daily = Trigger::cron("0 0 3 * * *", "UTC")?.to_json();
    let minutely = Trigger::cron("0 * * * * *", "UTC")?.to_json();
    let decl = |i: u32| {
        let trigger = if i < tasks && shape == Shape::Minutely {
            minutely.clone()
        } else if i < tasks {
            let offset_ms = if shape == Shape::Burst {
                0
            } else {
                i64::from(i) * 1000 / i64::from(tasks)
            };
            let anchor = DateTime::from_timestamp_millis(offset_ms).unwrap_or_default();
            Trigger::Interval {
                every_secs: 1,
                anchor,
            }
            .to_json()
        } else {
            daily.clone()
        };
        TaskDecl::trigger_json(&bench_name(i), &trigger)
            .handler("cronmesh::bench")
            .owner("bench")
            .misfire(MisfirePolicy::Skip)
            .misfire_grace_secs(1)
            .overlap(OverlapPolicy::Allow)
            .lock_ttl_ms(30_000)
    };
    Ok(range.map(decl).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_a_window_count_the_ones_inside_it() {
        let w = |start_ms, end_ms| Window { start_ms, end_ms };
        assert_eq!(Shape::Spread.instants_in(w(1_000, 3_000)), 2);
        assert_eq!(Shape::Minutely.instants_in(w(0, 60_000)), 1);
        assert_eq!(Shape::Minutely.instants_in(w(1_000, 61_000)), 1);
        assert_eq!(Shape::Minutely.instants_in(w(1_000, 60_000)), 0);
        assert_eq!(Shape::Minutely.instants_in(w(59_000, 181_000)), 3);
    }
}
