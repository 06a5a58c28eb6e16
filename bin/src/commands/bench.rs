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
use entity::scheduled_task;
use entity::task_run::{self, RunStatus};
use scheduler_actors::{
    GetMetrics, NodeBuilder, NodeConfig, TaskContext, TaskFailure, TaskHandler,
};
use scheduler_core::Trigger;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

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
    #[arg(long, conflicts_with = "burst")]
    spread: bool,
    /// All tasks on the same second boundary.
    #[arg(long)]
    burst: bool,
    /// Extra registered tasks that fire daily (idle), for memory and start-up at scale.
    #[arg(long, default_value_t = 0)]
    idle: u32,
    /// Handler: noop, or sleep:MS.
    #[arg(long, default_value = "noop")]
    handler: String,
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
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What the bench handler saw: (task index, fire ms, lateness ms).
type Seen = Arc<Mutex<Vec<(u32, i64, f64)>>>;

struct BenchHandler {
    seen: Seen,
    sleep: Option<Duration>,
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
        let sleep = self.sleep;
        Box::pin(async move {
            if let Some(d) = sleep {
                tokio::time::sleep(d).await;
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

fn bench_name(i: u32) -> String {
    format!("bench.t{i:07}")
}

pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let sleep = match args.handler.as_str() {
        "noop" => None,
        other => match other.strip_prefix("sleep:").map(str::parse::<u64>) {
            Some(Ok(ms)) => Some(Duration::from_millis(ms)),
            _ => anyhow::bail!(InvalidInput(format!(
                "--handler {other:?} is not noop or sleep:MS"
            ))),
        },
    };
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
    });
    let tasks = args.tasks;
    let idle = args.idle;
    let burst = args.burst;
    let duration = args.duration;
    let baseline_rss = rss().0;

    let system = actix::System::new();
    let report = system.block_on(async move {
        let db = scheduler_actors::store::connect(&db_url).await?;
        scheduler_actors::store::migrate(&db).await?;
        task_run::Entity::delete_many()
            .filter(task_run::Column::TaskName.starts_with("bench."))
            .exec(&db)
            .await?;
        scheduled_task::Entity::delete_many()
            .filter(scheduled_task::Column::Name.starts_with("bench."))
            .exec(&db)
            .await?;
        insert_tasks(&db, tasks, idle, burst).await?;
        let created = started.elapsed();

        let config = NodeConfig {
            database_url: db_url.clone(),
            redis_url,
            http_bind: None,
            demo_enabled: false,
            node_id: Some("bench".to_owned()),
            ..NodeConfig::default()
        };
        let node_started = Instant::now();
        let node = NodeBuilder::new(config)
            .handler("cronmesh::bench", handler)
            .start()
            .await?;
        // The scheduler computes every first fire when it starts; a reply means it has.
        node.scheduler.send(GetMetrics).await?;
        let startup = node_started.elapsed();
        let rss_started = rss().0;

        // Measure whole seconds after a warm-up second.
        let now = Utc::now();
        let window_start = DateTime::from_timestamp(now.timestamp() + 2, 0).unwrap_or(now);
        let window_end = window_start + chrono::Duration::seconds(i64::from(duration));
        tokio::time::sleep((window_start - Utc::now()).to_std().unwrap_or_default()).await;
        let cpu_start = cpu_seconds();
        tokio::time::sleep((window_end - Utc::now()).to_std().unwrap_or_default()).await;
        let cpu = cpu_seconds() - cpu_start;
        let peak_rss = rss().1;
        // Let the window's last fires finish before the shutdown stops new ones.
        tokio::time::sleep(Duration::from_secs(1)).await;
        node.shutdown().await?;

        let recorded = task_run::Entity::find()
            .filter(task_run::Column::TaskName.starts_with("bench.t"))
            .filter(task_run::Column::FireTsMs.gte(window_start.timestamp_millis()))
            .filter(task_run::Column::FireTsMs.lt(window_end.timestamp_millis()))
            .filter(task_run::Column::Status.eq(RunStatus::Succeeded.as_str()))
            .count(&db)
            .await?;
        // Closed inside the runtime: the pool cannot be dropped outside it.
        db.close().await?;
        Ok::<_, anyhow::Error>((
            created,
            startup,
            rss_started,
            peak_rss,
            cpu,
            recorded,
            window_start,
            window_end,
        ))
    })?;
    crate::commands::run::drop_system(system);
    let (created, startup, rss_started, peak_rss, cpu, recorded, window_start, window_end) = report;

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    let (ws, we) = (
        window_start.timestamp_millis(),
        window_end.timestamp_millis(),
    );
    let mut per_fire: HashMap<(u32, i64), u32> = HashMap::new();
    let mut lateness: Vec<f64> = Vec::new();
    for (task, fire, late) in seen.into_iter().filter(|(_, f, _)| (ws..we).contains(f)) {
        *per_fire.entry((task, fire)).or_default() += 1;
        lateness.push(late);
    }
    lateness.sort_by(f64::total_cmp);
    let expected = u64::from(tasks) * u64::from(duration);
    let distinct = per_fire.len() as u64;
    let duplicates: u64 = per_fire.values().map(|n| u64::from(n - 1)).sum();
    let registered = u64::from(tasks) + u64::from(idle);
    let out = serde_json::json!({
        "tasks": tasks,
        "idle_tasks": idle,
        "duration_s": duration,
        "mode": if burst { "burst" } else { "spread" },
        "fires_expected": expected,
        "runs_recorded": recorded,
        "duplicates": duplicates,
        "missing": expected.saturating_sub(distinct),
        "lateness_ms": {
            "p50": percentile(&lateness, 50.0),
            "p90": percentile(&lateness, 90.0),
            "p99": percentile(&lateness, 99.0),
            "max": lateness.last().copied().unwrap_or(0.0),
        },
        "fires_per_s": distinct as f64 / f64::from(duration),
        "peak_rss_mb": peak_rss as f64 / 1_048_576.0,
        "rss_per_task_bytes": rss_started.saturating_sub(baseline_rss) / registered.max(1),
        "startup_ms": startup.as_secs_f64() * 1000.0,
        "tasks_created_ms": created.as_secs_f64() * 1000.0,
        "cpu_s_per_1k_fires": if distinct == 0 { 0.0 } else { cpu / (distinct as f64 / 1000.0) },
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Inserts the bench tasks in chunks (under every database's bind-parameter limit).
async fn insert_tasks(
    db: &sea_orm::DatabaseConnection,
    tasks: u32,
    idle: u32,
    burst: bool,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let daily = Trigger::cron("0 0 3 * * *", "UTC")?.to_json();
    let row = |i: u32| {
        let trigger = if i < tasks {
            let offset_ms = if burst {
                0
            } else {
                i64::from(i) * 1000 / i64::from(tasks)
            };
            let anchor = DateTime::from_timestamp_millis(offset_ms).unwrap_or(now);
            Trigger::Interval {
                every_secs: 1,
                anchor,
            }
            .to_json()
        } else {
            daily.clone()
        };
        scheduled_task::ActiveModel {
            name: Set(bench_name(i)),
            module: Set("bench".to_owned()),
            handler: Set("cronmesh::bench".to_owned()),
            trigger_json: Set(Some(trigger)),
            enabled: Set(true),
            owner: Set("bench".to_owned()),
            description: Set(String::new()),
            misfire: Set("skip".to_owned()),
            misfire_grace_ms: Set(1000),
            overlap: Set("allow".to_owned()),
            recover: Set(false),
            lock_ttl_ms: Set(30_000),
            source: Set("runtime".to_owned()),
            orphaned: Set(false),
            schedule_overridden: Set(false),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    };
    let total = tasks + idle;
    let mut i = 0;
    while i < total {
        // ~18 columns a row: 1000 rows stay under SQLite's 32766 and Postgres' 65535 binds.
        let end = (i + 1000).min(total);
        scheduled_task::Entity::insert_many((i..end).map(row))
            .exec_without_returning(db)
            .await?;
        i = end;
    }
    Ok(())
}
