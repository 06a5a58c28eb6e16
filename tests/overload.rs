//! A node given more than it can start on time: it says so (the lag metrics), runs nothing
//! later than the task's misfire grace, records every fire it gives up as `misfired` with how
//! late it was, and says when it has caught up.
//!
//! The overload is made with a lock backend whose acquisitions take longer than the grace (the
//! in-process memory backend behind a switchable delay), so every fire comes up late for as
//! long as the switch is on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use entity::task_run::RunStatus;
use futures_util::future::BoxFuture;
use scheduler_actors::{
    CodeTasks, LockBackend, MemoryLockBackend, NodeBuilder, NodeConfig, RenewItem, TaskContext,
    TaskFailure, TaskFuture, TaskHandler,
};
use scheduler_core::TaskDecl;

use crate::support::node::runs_of;

/// The memory lock, each acquisition delayed by `delay` while `slow` is set.
struct SlowLock {
    inner: MemoryLockBackend,
    slow: Arc<AtomicBool>,
    delay: Duration,
}

impl LockBackend for SlowLock {
    fn name(&self) -> &'static str {
        "slow-memory"
    }

    fn shared_across_nodes(&self) -> bool {
        false
    }

    fn acquire(
        &self,
        key: String,
        value: String,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<bool, scheduler_actors::Error>> {
        let delay = self.slow.load(Ordering::SeqCst).then_some(self.delay);
        let acquire = self.inner.acquire(key, value, ttl);
        Box::pin(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            acquire.await
        })
    }

    fn renew(
        &self,
        items: Vec<RenewItem>,
    ) -> BoxFuture<'static, Result<Vec<Option<bool>>, scheduler_actors::Error>> {
        self.inner.renew(items)
    }

    fn release(
        &self,
        key: String,
        value: String,
        keep_for: Option<Duration>,
    ) -> BoxFuture<'static, Result<bool, scheduler_actors::Error>> {
        self.inner.release(key, value, keep_for)
    }
}

/// Notes how late each run started, in milliseconds.
#[derive(Default)]
struct Lateness(Mutex<Vec<i64>>);

impl TaskHandler for Lateness {
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        let late = (Utc::now() - ctx.fire_time).num_milliseconds();
        self.0.lock().unwrap().push(late);
        Box::pin(async { Ok::<_, TaskFailure>(scheduler_actors::TaskOutput::default()) })
    }
}

#[test]
fn a_node_behind_its_schedule_says_so_runs_nothing_late_and_records_every_fire() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("overload.db").display());
    let seen = Arc::new(Lateness::default());
    let owed = Arc::new(Lateness::default());
    let tasks = CodeTasks::new()
        .with_handler(
            TaskDecl::cron("load.every_second", "* * * * * *")
                .overlap(scheduler_core::OverlapPolicy::Allow)
                .misfire_grace_secs(1),
            "load::note",
            seen.clone(),
        )
        // Its policy owes every fire: they run, late, and none is given up.
        .with_handler(
            TaskDecl::cron("load.every_fire_owed", "* * * * * *")
                .overlap(scheduler_core::OverlapPolicy::Allow)
                .misfire(scheduler_core::MisfirePolicy::FireAll { max: 100 })
                .misfire_grace_secs(1),
            "load::owed",
            owed.clone(),
        );
    let slow = Arc::new(AtomicBool::new(true));
    let lock = SlowLock {
        inner: MemoryLockBackend::new(),
        slow: slow.clone(),
        // Fires are prepared 200 ms ahead: each comes up about 1.4 s late, past the grace.
        delay: Duration::from_millis(1_600),
    };
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        shutdown_grace: Duration::from_secs(2),
        ..NodeConfig::default()
    };

    let system = actix::System::new();
    let seen_in = seen.clone();
    let (db, behind, caught_up) = system.block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .lock_backend(Arc::new(lock))
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        let behind = node.metrics();
        assert!(
            seen_in.0.lock().unwrap().is_empty(),
            "no fire ran while every one came up past its grace"
        );
        slow.store(false, Ordering::SeqCst);
        // Caught up once 5 s have passed without a late fire (the next tick says so).
        tokio::time::sleep(Duration::from_millis(8_000)).await;
        let caught_up = node.metrics();
        let db = node.db().clone();
        node.shutdown().await.unwrap();
        (db, behind, caught_up)
    });

    // Behind: how late, since when, how many fires were given up; in Prometheus text too.
    assert!(behind.schedule_behind_ms >= 1_000, "{behind:?}");
    assert!(behind.schedule_behind_since.is_some(), "{behind:?}");
    assert!(behind.fires_shed_total >= 3, "{behind:?}");
    let text = behind.prometheus();
    for metric in [
        "cronmesh_schedule_behind_milliseconds",
        "cronmesh_schedule_behind_since_timestamp_seconds",
        "cronmesh_fires_shed_total",
    ] {
        assert!(text.contains(&format!("\n{metric} ")), "{metric}: {text}");
    }
    // Caught up: the episode ended.
    assert_eq!(caught_up.schedule_behind_ms, 0, "{caught_up:?}");
    assert_eq!(caught_up.schedule_behind_since, None, "{caught_up:?}");

    // What ran, ran within its grace.
    let late = seen.0.lock().unwrap().clone();
    assert!(late.len() >= 4, "runs after the overload: {late:?}");
    assert!(late.iter().all(|ms| *ms < 1_000), "{late:?}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let runs = runs_of(&db, "load.every_second").await;
        let misfired: Vec<_> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Misfired)
            .collect();
        // Given up one after another: one row for the run of them, counting them.
        let given_up: i32 = misfired.iter().map(|r| r.fires).sum();
        assert!(given_up >= 3, "{runs:?}");
        assert!(misfired.iter().any(|r| r.fires > 1), "{runs:?}");
        assert!(misfired.len() < given_up as usize, "{runs:?}");
        for r in &misfired {
            let why = r.error.as_deref().unwrap_or("");
            assert!(
                why.contains("behind its schedule") && why.contains("misfire grace 1000 ms"),
                "{r:?}"
            );
        }
        assert!(
            runs.iter()
                .all(|r| matches!(r.status, RunStatus::Misfired | RunStatus::Succeeded)),
            "{runs:?}"
        );
        // Every fire has a row standing for it, none missing, from the first fire to the last:
        // a row for `fires` fires is that many seconds after the row before it.
        for pair in runs.windows(2) {
            assert_eq!(
                pair[1].fire_ts_ms - pair[0].fire_ts_ms,
                1_000 * i64::from(pair[1].fires),
                "a fire without a row: {runs:?}"
            );
        }
        let succeeded = runs
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .count();
        assert_eq!(succeeded, late.len(), "every run recorded once");
        let owed_runs = runs_of(&db, "load.every_fire_owed").await;
        let owed_late = owed.0.lock().unwrap().clone();
        assert!(
            owed_runs.iter().all(|r| r.status == RunStatus::Succeeded),
            "{owed_runs:?}"
        );
        assert_eq!(owed_runs.len(), owed_late.len(), "{owed_runs:?}");
        assert!(
            owed_late.iter().filter(|ms| **ms >= 1_000).count() >= 3,
            "the owed fires ran late: {owed_late:?}"
        );
        // The task's status fields followed (a change of status is written at once, the rest
        // at shutdown).
        let task = store::get_task(&db, "load.every_second").await.unwrap();
        let last = runs.last().unwrap();
        assert_eq!(
            task.row.last_status.as_deref(),
            Some("succeeded"),
            "{task:?}"
        );
        assert_eq!(
            task.row.last_run_at.map(|t| t.timestamp_millis()),
            Some(last.fire_ts_ms),
            "{task:?}"
        );
    });
}
