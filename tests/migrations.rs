//! Migrations go up, down and up again on SQLite and Postgres, and the schema they build
//! holds the constraints the engine relies on.

use chrono::Utc;
use entity::task_run::{self, RunStatus};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    sea_query::OnConflict,
};

use crate::support::postgres::TempDatabase;

async fn table_names(db: &DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        _ => {
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        }
    };
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get::<String>("", "name").unwrap())
    .collect()
}

fn run(task: &str, fire: i64) -> task_run::ActiveModel {
    task_run::ActiveModel {
        run_id: Set(uuid::Uuid::new_v4().to_string()),
        task_name: Set(task.to_owned()),
        fire_ts_ms: Set(fire),
        attempt: Set(1),
        node_id: Set("n1".to_owned()),
        status: Set(RunStatus::Running),
        started_at: Set(Utc::now()),
        ..Default::default()
    }
}

async fn up_down_up(db: &DatabaseConnection) {
    let mut all = vec![
        "alert_delivery",
        "audit_event",
        "cluster_state",
        "console_session",
        "scheduled_task",
        "scheduler_node",
        "seaql_migrations",
        "task_run",
        "trigger_conf",
    ];
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        // Postgres counts task versions with a sequence instead.
        all.push("version_counter");
    }
    assert!(!store::schema_is_current(db).await.unwrap());
    assert!(
        table_names(db).await.is_empty(),
        "asking did not create anything"
    );
    Migrator::up(db, None).await.unwrap();
    assert_eq!(table_names(db).await, all);
    Migrator::down(db, None).await.unwrap();
    assert_eq!(table_names(db).await, ["seaql_migrations"]);
    Migrator::up(db, None).await.unwrap();
    assert_eq!(table_names(db).await, all);
    assert!(store::schema_is_current(db).await.unwrap());

    // The fencing guard: one row per (task, fire); a second claim does nothing.
    let claim = |task: &str, fire: i64| {
        task_run::Entity::insert(run(task, fire)).on_conflict(
            OnConflict::columns([task_run::Column::TaskName, task_run::Column::FireTsMs])
                .do_nothing()
                .to_owned(),
        )
    };
    assert_eq!(
        claim("a.b", 1000).exec_without_returning(db).await.unwrap(),
        1
    );
    assert_eq!(
        claim("a.b", 1000).exec_without_returning(db).await.unwrap(),
        0
    );
    assert_eq!(
        claim("a.b", 2000).exec_without_returning(db).await.unwrap(),
        1
    );
    assert_eq!(task_run::Entity::find().count(db).await.unwrap(), 2);
}

#[tokio::test]
async fn sqlite_up_down_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let db = store::connect(&url).await.unwrap();
    up_down_up(&db).await;
}

#[tokio::test]
async fn postgres_up_down_up() {
    let temp = TempDatabase::create().await;
    let db = store::connect(temp.url()).await.unwrap();
    up_down_up(&db).await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn nodes_syncing_code_tasks_at_once_on_a_fresh_database_all_succeed() {
    let temp = TempDatabase::create().await;
    let db = store::connect(temp.url()).await.unwrap();
    store::migrate(&db).await.unwrap();
    let decls: Vec<scheduler_core::TaskDecl> = (0..50)
        .map(|i| scheduler_core::TaskDecl::cron(&format!("sync.t{i}"), "* * * * *").handler("h"))
        .collect();
    let known = |_: &str| true;
    // Eight "nodes", each with its own pool, sync the same code tasks at the same moment.
    let mut nodes = Vec::new();
    for _ in 0..8 {
        nodes.push(store::connect(temp.url()).await.unwrap());
    }
    let results = futures_util::future::join_all(
        nodes
            .iter()
            .map(|node| store::sync_code_tasks(node, &decls, &known)),
    )
    .await;
    let mut inserted = 0;
    for r in results {
        inserted += r.expect("every node starts").inserted.len();
    }
    assert_eq!(inserted, 50, "each task inserted by exactly one node");
    let rows = store::load_tasks(&db).await.unwrap();
    assert_eq!(rows.len(), 50);
}

#[tokio::test]
async fn concurrent_writers_on_postgres_never_share_a_task_version() {
    let temp = TempDatabase::create().await;
    let db = store::connect(temp.url()).await.unwrap();
    store::migrate(&db).await.unwrap();
    // Eight writers, each with its own pool, add tasks at the same moment.
    let mut pools = Vec::new();
    for _ in 0..8 {
        pools.push(store::connect(temp.url()).await.unwrap());
    }
    futures_util::future::join_all(pools.iter().enumerate().map(|(w, db)| async move {
        let check = |_: &scheduler_core::TaskDecl| Ok(());
        for i in 0..10 {
            let decl =
                scheduler_core::TaskDecl::cron(&format!("v.w{w}_{i}"), "* * * * *").handler("noop");
            store::insert_runtime_task(db, &decl, &check, &store::Who::new("test"))
                .await
                .unwrap();
        }
    }))
    .await;
    let tasks = store::load_tasks(&db).await.unwrap();
    let versions: std::collections::BTreeSet<i64> = tasks.iter().map(|t| t.row.version).collect();
    assert_eq!(tasks.len(), 80);
    assert_eq!(versions.len(), 80, "every write got a version of its own");
    db.close().await.unwrap();
}

#[tokio::test]
async fn writers_with_the_same_if_match_on_postgres_one_wins_the_others_are_stale() {
    let temp = TempDatabase::create().await;
    let db = store::connect(temp.url()).await.unwrap();
    store::migrate(&db).await.unwrap();
    let who = store::Who::new("test");
    let decl = scheduler_core::TaskDecl::cron("v.one", "* * * * *").handler("noop");
    store::insert_runtime_task(&db, &decl, &|_| Ok(()), &who)
        .await
        .unwrap();
    let version = store::get_task(&db, "v.one").await.unwrap().row.version;
    let mut pools = Vec::new();
    for _ in 0..8 {
        pools.push(store::connect(temp.url()).await.unwrap());
    }
    let results = futures_util::future::join_all(pools.iter().enumerate().map(|(i, db)| {
        let who = store::Who::new(format!("writer{i}"));
        async move { store::set_enabled_if(db, "v.one", i % 2 == 0, Some(version), &who).await }
    }))
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(store::StoreError::Stale { .. })))
        .count();
    assert_eq!((won, stale), (1, 7), "{results:?}");
    let audit = store::list_audit(
        &db,
        &store::AuditFilter {
            target: Some("task:v.one".into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "the create and the one change that won");
    db.close().await.unwrap();
}
