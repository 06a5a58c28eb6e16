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
        assert!(unknown.unwrap_err().to_string().contains("lib.nope"));
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

async fn slow(ctx: TaskContext) -> Result<(), TaskFailure> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_millis(1500)) => Ok(()),
        () = ctx.cancel.cancelled() => Err(TaskFailure::new("cancelled")),
    }
}

#[test]
fn overlap_forbid_records_skipped_fires() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lib.db").display());
    let tasks = CodeTasks::new().with_handler(
        TaskDecl::cron("lib.slow", "* * * * * *"),
        "lib::slow",
        Arc::new(slow),
    );
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        ..NodeConfig::default()
    };
    let db = actix::System::new().block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5200)).await;
        let db = node.db.clone();
        node.shutdown().await.unwrap();
        db
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let runs = runs_of(&db, "lib.slow").await;
        let ran: Vec<_> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .collect();
        let skipped: Vec<_> = runs
            .iter()
            .filter(|r| r.status == RunStatus::SkippedOverlap)
            .collect();
        assert!(ran.len() >= 2 && skipped.len() >= 2, "{runs:#?}");
        assert!(
            skipped
                .iter()
                .all(|r| r.error.as_deref().unwrap_or("").contains("overlap: forbid"))
        );
        // Runs that did run never overlapped.
        for pair in ran.windows(2) {
            let first_end = pair[0].finished_at.unwrap();
            assert!(pair[1].started_at >= first_end, "{pair:#?}");
        }
    });
}

#[test]
fn persistence_buffers_through_a_database_failure_and_a_restart() {
    use scheduler_actors::{
        ClaimRun, Flush, Metrics, PersistenceActor, RecordFinish, RestartPersistence,
    };
    use sea_orm::ConnectionTrait;
    use store::FinishedRun;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    actix::System::new().block_on(async move {
        let db = store::connect(&url).await.unwrap();
        store::migrate(&db).await.unwrap();
        let metrics = Metrics::new();
        let (pdb, m) = (db.clone(), metrics.clone());
        let persistence =
            actix::Supervisor::start(move |_| PersistenceActor::new(pdb, "n1".into(), 1000, m));
        let claim = entity::task_run::Model {
            id: 0,
            run_id: "run-1".into(),
            task_name: "p.task".into(),
            fire_ts_ms: 1_000,
            attempt: 1,
            node_id: "n1".into(),
            status: RunStatus::Running,
            started_at: chrono::Utc::now(),
            finished_at: None,
            duration_ms: None,
            error: None,
            output: None,
        };
        let claimed = persistence
            .send(ClaimRun {
                run: claim,
                forbid_overlap: true,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed, store::ClaimOutcome::Claimed);

        // The table goes away: writes fail and must be kept.
        db.execute_unprepared("ALTER TABLE task_run RENAME TO task_run_away")
            .await
            .unwrap();
        persistence.do_send(RecordFinish(FinishedRun {
            task_name: "p.task".into(),
            fire_ts_ms: 1_000,
            attempt: 1,
            run_id: "run-1".into(),
            status: RunStatus::Succeeded,
            finished_at: chrono::Utc::now(),
            duration_ms: 5,
            error: None,
            output: None,
        }));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            metrics.snapshot().persistence_buffered,
            1,
            "kept while the write fails"
        );
        persistence.do_send(RestartPersistence);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let snap = metrics.snapshot();
        let restarts = snap
            .actors
            .iter()
            .find(|a| a.actor == "PersistenceActor")
            .unwrap()
            .restarts;
        assert_eq!(restarts, 1);
        assert_eq!(snap.persistence_buffered, 1, "a restart keeps the buffer");

        db.execute_unprepared("ALTER TABLE task_run_away RENAME TO task_run")
            .await
            .unwrap();
        let left = persistence
            .send(Flush {
                within: Duration::from_secs(10),
            })
            .await
            .unwrap();
        assert_eq!(left, 0);
        let runs = runs_of(&db, "p.task").await;
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0].status,
            RunStatus::Succeeded,
            "written once the database is back"
        );
        assert_eq!(metrics.snapshot().persistence_dropped_writes, 0);
    });
}

#[test]
fn fires_missed_while_paused_follow_the_misfire_policy() {
    use scheduler_actors::{Pause, Resume};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lib.db").display());
    let tasks = CodeTasks::new().with_handler(
        TaskDecl::cron("lib.paused", "* * * * * *").misfire_grace_secs(0),
        "lib::healthy",
        Arc::new(healthy),
    );
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        ..NodeConfig::default()
    };
    let (db, paused_at, resumed_at) = actix::System::new().block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        node.scheduler.send(Pause).await.unwrap();
        let paused_at = chrono::Utc::now().timestamp_millis();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let resumed_at = chrono::Utc::now().timestamp_millis();
        node.scheduler.send(Resume).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = node.db.clone();
        node.shutdown().await.unwrap();
        (db, paused_at, resumed_at)
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let runs = runs_of(&db, "lib.paused").await;
        // Fires in the pause window: none ran on time; fire_once ran the latest of them late.
        let in_pause: Vec<_> = runs
            .iter()
            .filter(|r| r.fire_ts_ms > paused_at + 1000 && r.fire_ts_ms <= resumed_at)
            .collect();
        let ran: Vec<_> = in_pause
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .collect();
        assert_eq!(ran.len(), 1, "{runs:#?}");
        assert!(ran[0].started_at.timestamp_millis() >= resumed_at);
        assert!(in_pause.iter().any(|r| r.status == RunStatus::Misfired));
    });
}

#[test]
fn pruning_deletes_old_finished_runs_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("prune.db").display());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let db = store::connect(&url).await.unwrap();
            store::migrate(&db).await.unwrap();
            let now = chrono::Utc::now();
            let old = now - chrono::Duration::days(40);
            for (i, (started, status)) in [
                (old, RunStatus::Succeeded),
                (old, RunStatus::Running),
                (now, RunStatus::Failed),
            ]
            .into_iter()
            .enumerate()
            {
                let row = entity::task_run::Model {
                    id: 0,
                    run_id: format!("r{i}"),
                    task_name: "p.t".into(),
                    fire_ts_ms: i as i64 * 1000,
                    attempt: 1,
                    node_id: "n".into(),
                    status,
                    started_at: started,
                    finished_at: None,
                    duration_ms: None,
                    error: None,
                    output: None,
                };
                assert!(store::claim_run(&db, &row).await.unwrap());
            }
            let deleted = store::prune_runs(&db, now - chrono::Duration::days(30))
                .await
                .unwrap();
            assert_eq!(deleted, 1);
            let left: Vec<RunStatus> = runs_of(&db, "p.t").await.iter().map(|r| r.status).collect();
            assert_eq!(
                left,
                [RunStatus::Running, RunStatus::Failed],
                "a running row is a fencing record and stays"
            );
        });
}
