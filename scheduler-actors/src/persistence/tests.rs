//! The persistence actor against a real SQLite file: writes kept through a database failure
//! and a restart of the actor.

use super::*;

#[test]
fn buffers_through_a_database_failure_and_a_restart() {
    use entity::task_run::RunStatus;
    use sea_orm::ConnectionTrait;
    use store::FinishedRun;

    use crate::metrics::Metrics;

    let dir = tempfile::tempdir().expect("in test");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    actix::System::new().block_on(async move {
        let db = store::connect(&url).await.expect("in test");
        store::migrate(&db).await.expect("in test");
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
            fires: 1,
        };
        let claimed = persistence
            .send(ClaimRun {
                run: claim,
                forbid_overlap: true,
            })
            .await
            .expect("in test")
            .expect("in test");
        assert_eq!(claimed, store::ClaimOutcome::Claimed);

        // The table goes away: writes fail and must be kept.
        db.execute_unprepared("ALTER TABLE task_run RENAME TO task_run_away")
            .await
            .expect("in test");
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
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(
            metrics.snapshot().persistence_buffered,
            1,
            "kept while the write fails"
        );
        persistence.do_send(RestartPersistence);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let snap = metrics.snapshot();
        let restarts = snap
            .actors
            .iter()
            .find(|a| a.actor == "PersistenceActor")
            .expect("in test")
            .restarts;
        assert_eq!(restarts, 1);
        assert_eq!(snap.persistence_buffered, 1, "a restart keeps the buffer");

        db.execute_unprepared("ALTER TABLE task_run_away RENAME TO task_run")
            .await
            .expect("in test");
        let left = persistence
            .send(Flush {
                within: std::time::Duration::from_secs(10),
            })
            .await
            .expect("in test");
        assert_eq!(left, 0);
        let runs = store::list_runs(
            &db,
            &store::RunFilter {
                task: Some("p.task".to_owned()),
                status: None,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("in test");
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
fn new_claims_are_refused_while_the_database_is_behind_and_shed_fires_share_a_row() {
    use entity::task_run::RunStatus;
    use sea_orm::ConnectionTrait;

    use crate::metrics::Metrics;

    let dir = tempfile::tempdir().expect("in test");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    actix::System::new().block_on(async move {
        let db = store::connect(&url).await.expect("in test");
        store::migrate(&db).await.expect("in test");
        let metrics = Metrics::new();
        let (pdb, m) = (db.clone(), metrics.clone());
        // A bound of 10: claims stop once 2 writes wait.
        let persistence = PersistenceActor::new(pdb, "n1".into(), 10, m).start();
        let now = chrono::Utc::now();
        let row = |task: &str, fire_ts_ms: i64| {
            store::not_run_row(
                task,
                fire_ts_ms,
                "n1",
                RunStatus::Misfired,
                "not run: the node was behind".to_owned(),
                now,
            )
        };
        let claim = |fire_ts_ms: i64| ClaimRun {
            run: store::running_row(store::new_run_id(), "p.run", fire_ts_ms, 1, "n1", now),
            forbid_overlap: false,
        };
        let claimed = persistence.send(claim(1_000)).await.expect("in test");
        assert!(matches!(claimed, Ok(ClaimOutcome::Claimed)), "{claimed:?}");

        db.execute_unprepared("ALTER TABLE task_run RENAME TO task_run_away")
            .await
            .expect("in test");
        persistence.do_send(RecordSkipped(row("p.other", 1_000)));
        persistence.do_send(RecordSkipped(row("p.other", 2_000)));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let refused = persistence.send(claim(2_000)).await.expect("in test");
        assert!(
            matches!(refused, Err(Error::WritesBehind { waiting: 2 })),
            "{refused:?}"
        );
        // Three fires of one task given up meanwhile: gathered, not queued one by one.
        for fire in [3_000, 4_000, 5_000] {
            persistence.do_send(RecordShed(row("p.shed", fire)));
        }

        db.execute_unprepared("ALTER TABLE task_run_away RENAME TO task_run")
            .await
            .expect("in test");
        let left = persistence
            .send(Flush {
                within: std::time::Duration::from_secs(10),
            })
            .await
            .expect("in test");
        assert_eq!(left, 0);
        let claimed = persistence.send(claim(6_000)).await.expect("in test");
        assert!(
            matches!(claimed, Ok(ClaimOutcome::Claimed)),
            "claims again: {claimed:?}"
        );
        let shed = runs(&db, "p.shed").await;
        assert_eq!(shed.len(), 1, "{shed:?}");
        assert_eq!((shed[0].fire_ts_ms, shed[0].fires), (5_000, 3));
        assert_eq!(runs(&db, "p.other").await.len(), 2);
        assert_eq!(metrics.snapshot().persistence_dropped_writes, 0);
    });
}

async fn runs(db: &sea_orm::DatabaseConnection, task: &str) -> Vec<task_run::Model> {
    store::list_runs(
        db,
        &store::RunFilter {
            task: Some(task.to_owned()),
            status: None,
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .expect("in test")
}
