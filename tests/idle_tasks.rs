//! Idle tasks: a node keeps only the scheduling columns of a task and reads its whole row when
//! the task is about to fire. The handler still gets everything the row says (its
//! arguments), whether the fire is scheduled or asked for; and a row whose scheduling columns
//! are fine but whose whole row does not validate (edited by hand) is reported and left out
//! until it changes, instead of being loaded and refused at every fire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::task_run::RunStatus;
use scheduler_actors::{
    NodeBuilder, NodeConfig, TaskContext, TaskFailure, TaskFuture, TaskHandler,
};
use scheduler_core::TaskDecl;
use sea_orm::ConnectionTrait;

use crate::support::node::runs_of;

/// Notes each run's task and the `who` of its arguments.
#[derive(Default)]
struct NoteArgs(Mutex<Vec<(String, String)>>);

impl TaskHandler for NoteArgs {
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        let who = ctx
            .args
            .as_ref()
            .and_then(|a| a.get("who"))
            .and_then(|w| w.as_str())
            .unwrap_or("(none)")
            .to_owned();
        self.0.lock().unwrap().push((ctx.task.clone(), who));
        Box::pin(async { Ok::<_, TaskFailure>(scheduler_actors::TaskOutput::default()) })
    }
}

impl NoteArgs {
    fn runs_of(&self, task: &str) -> Vec<String> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(t, _)| t == task)
            .map(|(_, who)| who.clone())
            .collect()
    }
}

#[test]
fn idle_tasks_load_their_rows_when_they_fire_and_a_row_that_does_not_validate_waits_for_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idle.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = store::connect(&url).await.unwrap();
        store::migrate(&db).await.unwrap();
        let who = store::Who::new("test");
        let add = |decl: TaskDecl| {
            let (db, who) = (db.clone(), who.clone());
            async move {
                store::insert_runtime_task(&db, &decl, &|_| Ok(()), &who)
                    .await
                    .unwrap();
            }
        };
        let args = |who: &str| serde_json::json!({ "who": who });
        add(TaskDecl::cron("idle.daily", "0 0 3 * * *")
            .handler("idle::note")
            .handler_args(args("daily")))
        .await;
        add(TaskDecl::cron("idle.soon", "*/2 * * * * *")
            .handler("idle::note")
            .handler_args(args("soon")))
        .await;
        add(TaskDecl::cron("idle.edited", "* * * * * *")
            .handler("idle::note")
            .handler_args(args("edited")))
        .await;
        // Edited by hand: arguments that are not an object, which only the whole row shows.
        db.execute_unprepared(
            "UPDATE scheduled_task SET handler_args = '[1, 2]' WHERE name = 'idle.edited'",
        )
        .await
        .unwrap();
        db.close().await.unwrap();
    });

    let noted = Arc::new(NoteArgs::default());
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        shutdown_grace: Duration::from_secs(2),
        ..NodeConfig::default()
    };
    let system = actix::System::new();
    let seen = noted.clone();
    let db = system.block_on(async move {
        let node = NodeBuilder::new(config)
            .handler("idle::note", seen.clone())
            .start()
            .await
            .unwrap();
        // A run-now of a task that fires at 03:00: its row is read for this fire.
        node.run_now("idle.daily").await.unwrap();
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        assert_eq!(seen.runs_of("idle.daily"), ["daily"]);
        assert!(
            seen.runs_of("idle.soon").iter().all(|w| w == "soon")
                && !seen.runs_of("idle.soon").is_empty(),
            "scheduled fires of a task read at start-up by its scheduling columns: {:?}",
            seen.runs_of("idle.soon")
        );
        assert!(
            seen.runs_of("idle.edited").is_empty(),
            "a row that does not validate never runs"
        );
        let listed = node.list_scheduled().await.unwrap();
        assert!(
            listed.iter().all(|t| t.name != "idle.edited"),
            "and is not scheduled: {listed:?}"
        );

        // Fixed (as any change does, with a new version): it is scheduled and runs again.
        node.db()
            .execute_unprepared(
                "UPDATE scheduled_task SET handler_args = '{\"who\": \"fixed\"}', \
                 version = (SELECT MAX(version) + 1 FROM scheduled_task) \
                 WHERE name = 'idle.edited'",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        let db = node.db().clone();
        node.shutdown().await.unwrap();
        db
    });

    let fixed = noted.runs_of("idle.edited");
    assert!(
        !fixed.is_empty() && fixed.iter().all(|w| w == "fixed"),
        "{fixed:?}"
    );
    rt.block_on(async {
        let daily = runs_of(&db, "idle.daily").await;
        assert_eq!(daily.len(), 1, "{daily:?}");
        assert_eq!(daily[0].status, RunStatus::Succeeded);
        // Every run of the fixed row is recorded; the fires it missed while left out go
        // through its misfire policy like after any change.
        let edited = runs_of(&db, "idle.edited").await;
        let succeeded = edited
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .count();
        assert_eq!(succeeded, fixed.len(), "{edited:?}");
        assert!(
            edited
                .iter()
                .all(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::Misfired)),
            "{edited:?}"
        );
    });
}
