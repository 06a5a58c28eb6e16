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
        // The library API: a run now, and one of a task the node does not have.
        node.run_now("lib.healthy").await.unwrap();
        let unknown = node.run_now("lib.nope").await.unwrap_err();
        assert!(
            matches!(&unknown, scheduler_actors::Error::NotScheduled { task } if task == "lib.nope"),
            "{unknown}"
        );
        // The same through the scheduler's (metered) address.
        node.scheduler()
            .send(TriggerNow {
                task: "lib.healthy".into(),
            })
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let db = node.db().clone();
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
        let db = node.db().clone();
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
fn fires_missed_while_paused_follow_the_misfire_policy() {
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
        node.pause().await.unwrap();
        let paused_at = chrono::Utc::now().timestamp_millis();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let resumed_at = chrono::Utc::now().timestamp_millis();
        node.resume().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = node.db().clone();
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
                    fires: 1,
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

/// The application's own state, reached by a handler.
struct Deliveries(std::sync::atomic::AtomicUsize);

async fn deliver(ctx: TaskContext) -> Result<(), TaskFailure> {
    let deliveries = ctx
        .data::<Deliveries>()
        .ok_or_else(|| TaskFailure::new("no Deliveries given to the node"))?;
    deliveries
        .0
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

#[test]
fn run_events_match_the_records_and_a_slow_subscriber_only_lags() {
    use scheduler_actors::{RunEvent, RunEvents};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lib.db").display());
    let tasks = CodeTasks::new()
        .with_handler(every_second("ev.deliver"), "ev::deliver", Arc::new(deliver))
        .with_handler(every_second("ev.failing"), "ev::failing", Arc::new(failing))
        .with_handler(
            TaskDecl::cron("ev.slow", "* * * * * *"),
            "ev::slow",
            Arc::new(slow),
        );
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        ..NodeConfig::default()
    };
    let (db, events, late_events, delivered) = actix::System::new().block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .app_data(Deliveries(0.into()))
            .event_buffer(16)
            .start()
            .await
            .unwrap();
        // One subscriber reads as events come; the other not at all until the end.
        let mut prompt: RunEvents = node.subscribe();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(event) = prompt.next().await {
                seen.push(event);
            }
            seen
        });
        let mut idle = node.subscribe();
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let db = node.db().clone();
        node.shutdown().await.unwrap();
        let events = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the stream ends after NodeStopped")
            .unwrap();
        let mut late = Vec::new();
        while let Some(event) = idle.next().await {
            late.push(event);
        }
        let delivered = store::list_runs(
            &db,
            &store::RunFilter {
                task: Some("ev.deliver".into()),
                status: Some(RunStatus::Succeeded),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len();
        (db, events, late, delivered)
    });

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        assert_eq!(events.last(), Some(&RunEvent::NodeStopped), "{events:#?}");
        assert!(
            !events.iter().any(|e| matches!(e, RunEvent::Lagged { .. })),
            "a prompt reader misses nothing"
        );
        // Every record that ended has exactly one RunFinished with its id and status, and
        // every fire that was skipped one Skipped.
        let mut finished_rows = 0;
        let mut skipped_rows = 0;
        for task in ["ev.deliver", "ev.failing", "ev.slow"] {
            for row in runs_of(&db, task).await {
                match row.status {
                    RunStatus::SkippedOverlap => {
                        skipped_rows += 1;
                        let matching = events.iter().filter(|e| matches!(e,
                            RunEvent::Skipped { task: t, fire_time, status: RunStatus::SkippedOverlap, .. }
                                if t == task && fire_time.timestamp_millis() == row.fire_ts_ms)).count();
                        assert_eq!(matching, 1, "{row:?}");
                    }
                    RunStatus::Running => {}
                    RunStatus::Misfired => {
                        // A fire that could not start in time (a loaded machine): no run.
                        let matching = events.iter().filter(|e| matches!(e,
                            RunEvent::Skipped { task: t, fire_time, status: RunStatus::Misfired, .. }
                                if t == task && fire_time.timestamp_millis() == row.fire_ts_ms)).count();
                        assert_eq!(matching, 1, "{row:?}");
                    }
                    status => {
                        finished_rows += 1;
                        let matching = events.iter().filter(|e| matches!(e,
                            RunEvent::RunFinished { run_id, status: s, .. }
                                if *run_id == row.run_id && *s == status)).count();
                        assert_eq!(matching, 1, "{row:?}\n{events:#?}");
                        let started = events.iter().filter(|e| matches!(e,
                            RunEvent::RunStarted { run_id, .. } if *run_id == row.run_id)).count();
                        assert_eq!(started, 1, "{row:?}");
                    }
                }
            }
        }
        let finished_events = events
            .iter()
            .filter(|e| matches!(e, RunEvent::RunFinished { .. }))
            .count();
        assert_eq!(finished_events, finished_rows, "no event without a record");
        assert!(finished_rows >= 8 && skipped_rows >= 1, "{events:#?}");
        assert!(events.iter().any(|e| matches!(e,
            RunEvent::RunFinished { task, status: RunStatus::Failed, error: Some(error), .. }
                if task == "ev.failing" && error == "disk full on /data")));
        assert!(events
            .iter()
            .any(|e| matches!(e, RunEvent::FirePrepared { task, .. } if task == "ev.deliver")));

        // The handler reached the application's state: every delivery succeeded through it.
        assert!(delivered >= 3, "{delivered} deliveries");

        // The idle subscriber was told what it missed, then got the rest; the node did not
        // wait for it (the records above are all there).
        let missed: u64 = late_events
            .iter()
            .filter_map(|e| match e {
                RunEvent::Lagged { missed } => Some(*missed),
                _ => None,
            })
            .sum();
        assert!(missed > 0, "{late_events:#?}");
        assert_eq!(late_events.last(), Some(&RunEvent::NodeStopped));
        assert!(late_events.len() <= 16 + 1, "bounded: {}", late_events.len());
    });
}

#[test]
fn a_handler_with_app_state_can_be_called_in_the_applications_own_tests() {
    use scheduler_actors::AppData;
    let deliveries = AppData::default().with(Deliveries(0.into()));
    let ctx = TaskContext::for_test("ev.deliver", chrono::Utc::now(), deliveries.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(deliver(ctx)).unwrap();
    let count = deliveries.get::<Deliveries>().unwrap();
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Without the state the handler says what is missing.
    let bare = TaskContext::for_test("ev.deliver", chrono::Utc::now(), AppData::default());
    let err = rt.block_on(deliver(bare)).unwrap_err();
    assert!(err.to_string().contains("no Deliveries"), "{err}");
}

#[test]
fn the_retention_task_is_built_in_and_off_with_retention_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lib.db").display());
    let config = |retention: Duration| NodeConfig {
        database_url: url.clone(),
        http_bind: None,
        run_retention: retention,
        ..NodeConfig::default()
    };
    actix::System::new().block_on(async move {
        for (retention, on) in [(Duration::ZERO, false), (Duration::from_secs(86_400), true)] {
            let node = NodeBuilder::new(config(retention)).start().await.unwrap();
            let scheduled = node.list_scheduled().await.unwrap();
            let prune = scheduled
                .iter()
                .find(|t| t.name == "cronmesh.prune_runs")
                .expect("listed");
            assert!(prune.builtin);
            assert_eq!(prune.next_fire.is_some(), on, "{scheduled:?}");
            let row = store::get_task(node.db(), "cronmesh.prune_runs")
                .await
                .unwrap();
            assert_eq!(row.row.enabled, on, "retention {retention:?}");
            if !on {
                // A run of it anyway (run now) deletes nothing: an old finished record stays.
                let old = chrono::Utc::now() - chrono::Duration::days(400);
                let run = store::not_run_row(
                    "lib.old",
                    old.timestamp_millis(),
                    "n0",
                    RunStatus::Misfired,
                    "old".into(),
                    old,
                );
                use sea_orm::ActiveModelTrait;
                let mut row: entity::task_run::ActiveModel = run.into();
                row = row.reset_all();
                row.id = sea_orm::ActiveValue::NotSet;
                row.insert(node.db()).await.unwrap();
                node.run_now("cronmesh.prune_runs").await.unwrap();
                tokio::time::sleep(Duration::from_millis(800)).await;
                assert_eq!(
                    runs_of(node.db(), "lib.old").await.len(),
                    1,
                    "nothing pruned"
                );
                let prunes = runs_of(node.db(), "cronmesh.prune_runs").await;
                assert_eq!(prunes.len(), 1, "the prune did run");
            }
            node.shutdown().await.unwrap();
        }
    });
}

#[test]
fn a_library_node_open_beyond_loopback_without_tokens_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        database_url: format!("sqlite://{}", dir.path().join("lib.db").display()),
        http_bind: Some(std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
        ..NodeConfig::default()
    };
    actix::System::new().block_on(async move {
        let err = NodeBuilder::new(config)
            .start()
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("no API token"), "{err}");
    });
}
