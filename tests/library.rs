//! cronmesh as a library: a node started inside the test's own actix System, with code
//! tasks passed explicitly. Failures stay inside their task.

use std::sync::Arc;
use std::time::Duration;

use entity::task_run::RunStatus;
use scheduler_actors::{CodeTasks, NodeBuilder, NodeConfig, TaskContext, TaskFailure, TriggerNow};
use scheduler_core::TaskDecl;

use crate::support::node::runs_of;

async fn healthy(_ctx: TaskContext) -> Result<(), TaskFailure> {
    Ok(())
}

async fn failing(_ctx: TaskContext) -> Result<(), TaskFailure> {
    Err(TaskFailure::new("disk full on /data"))
}

async fn panicking(_ctx: TaskContext) -> Result<(), TaskFailure> {
    panic!("report index 7 out of range")
}

async fn hanging(ctx: TaskContext) -> Result<(), TaskFailure> {
    // Never finishes on its own; only the timeout ends it.
    ctx.cancel.cancelled().await;
    std::future::pending().await
}

fn every_second(name: &str) -> TaskDecl {
    TaskDecl::cron(name, "* * * * * *").overlap(scheduler_core::OverlapPolicy::Allow)
}

#[test]
fn a_failing_panicking_or_hanging_task_does_not_touch_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lib.db").display());
    let tasks = CodeTasks::new()
        .with_handler(
            every_second("lib.healthy"),
            "lib::healthy",
            Arc::new(healthy),
        )
        .with_handler(
            every_second("lib.failing"),
            "lib::failing",
            Arc::new(failing),
        )
        .with_handler(
            every_second("lib.panicking"),
            "lib::panicking",
            Arc::new(panicking),
        )
        .with_handler(
            every_second("lib.hanging").timeout_secs(1),
            "lib::hanging",
            Arc::new(hanging),
        );
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        shutdown_grace: Duration::from_secs(2),
        ..NodeConfig::default()
    };

    let system = actix::System::new();
    let db = system.block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .unwrap();
        // The library API: the scheduler is a plain actor address.
        node.scheduler
            .send(TriggerNow {
                task: "lib.healthy".into(),
            })
            .await
            .unwrap()
            .unwrap();
        let unknown = node
            .scheduler
            .send(TriggerNow {
                task: "lib.nope".into(),
            })
            .await
            .unwrap();
        assert!(unknown.unwrap_err().contains("lib.nope"));
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let db = node.db.clone();
        node.shutdown().await.unwrap();
        db
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let healthy = runs_of(&db, "lib.healthy").await;
        let scheduled: Vec<_> = healthy
            .iter()
            .filter(|r| r.fire_ts_ms % 1000 == 0)
            .collect();
        assert!(scheduled.len() >= 4, "{healthy:?}");
        for pair in scheduled.windows(2) {
            assert_eq!(
                pair[1].fire_ts_ms - pair[0].fire_ts_ms,
                1000,
                "the healthy task kept its schedule"
            );
        }
        assert!(healthy.iter().all(|r| r.status == RunStatus::Succeeded));

        let failing = runs_of(&db, "lib.failing").await;
        assert!(failing.len() >= 4);
        assert!(
            failing.iter().all(|r| r.status == RunStatus::Failed
                && r.error.as_deref() == Some("disk full on /data"))
        );

        let panicking = runs_of(&db, "lib.panicking").await;
        assert!(panicking.len() >= 4);
        for r in &panicking {
            assert_eq!(r.status, RunStatus::Panicked);
            assert!(
                r.error
                    .as_deref()
                    .unwrap_or("")
                    .contains("report index 7 out of range"),
                "{r:?}"
            );
        }

        let hanging = runs_of(&db, "lib.hanging").await;
        assert!(
            hanging
                .iter()
                .filter(|r| r.status == RunStatus::TimedOut)
                .count()
                >= 2,
            "{hanging:?}"
        );
    });
}
