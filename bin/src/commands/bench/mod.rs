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
use scheduler_actors::{TaskContext, TaskFailure, TaskHandler};
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, Trigger};

use crate::cli::InvalidInput;

mod measure;
mod nodes;

use self::measure::{RedisCalls, Window, percentile, redis_calls_in};
use self::nodes::{NodeRun, dead_receiver_alerts, node_config, run_workers, start_node, worker};

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
        // The planner's statistics as of the table just filled, as autovacuum would have them
        // a minute later: taken while the table was nearly empty, they have Postgres read each
        // page of a million tasks by a scan of the whole table (66 s instead of 5).
        store::vacuum(&db).await?;
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
