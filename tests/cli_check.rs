//! `cronmesh check` and `cronmesh migrate` through the real binary.

use crate::support::postgres::TempDatabase;
use crate::support::{cronmesh, stderr, stdout};

#[test]
fn migrate_creates_the_embedded_database_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("schema migrated"));
    assert!(dir.path().join("cronmesh.db").exists());
    let again = cronmesh(dir.path(), &["migrate"], &[]);
    assert!(
        stdout(&again).contains("already up to date"),
        "{}",
        stdout(&again)
    );
}

#[tokio::test]
async fn migrate_follows_the_database_url_override() {
    let temp = TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(
        dir.path(),
        &["migrate"],
        &[("CRONMESH__DATABASE__URL", temp.url())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !dir.path().join("cronmesh.db").exists(),
        "the SQLite default was not used"
    );
    let db = store::connect(temp.url()).await.unwrap();
    assert!(store::schema_is_current(&db).await.unwrap());
    db.close().await.unwrap();
}

#[test]
fn check_does_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(dir.path(), &["check"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.path().join("cronmesh.db").exists());
}

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        "[http]\nbind = \"everywhere\"\n",
    )
    .unwrap();
    let out = cronmesh(dir.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`http.bind`"), "{}", stderr(&out));
    let env = cronmesh(
        dir.path(),
        &["migrate"],
        &[("CRONMESH__HTTP__BIND", "127.0.0.1:9000")],
    );
    assert!(
        env.status.success(),
        "env overrides the file: {}",
        stderr(&env)
    );
    let missing = cronmesh(dir.path(), &["check", "--config", "nope.toml"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("nope.toml"));
}

#[test]
fn check_leaves_an_existing_unmigrated_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cronmesh.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}", path.display());
    let tables = |url: String| {
        rt.block_on(async move {
            use sea_orm::ConnectionTrait;
            let db = store::connect(&url).await.unwrap();
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                ))
                .await
                .unwrap();
            db.close().await.unwrap();
            rows.iter()
                .map(|r| r.try_get::<String>("", "name").unwrap())
                .collect::<Vec<_>>()
        })
    };
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = store::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE unrelated (x INTEGER)")
            .await
            .unwrap();
        db.close().await.unwrap();
    });
    let out = cronmesh(dir.path(), &["check"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs `cronmesh migrate`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tables(url), ["unrelated"]);
}

#[tokio::test]
async fn check_in_a_binary_without_the_code_tasks_the_database_has_says_how_to_link_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cronmesh.db").display());
    let db = store::connect(&url).await.unwrap();
    store::migrate(&db).await.unwrap();
    // Only cronmesh's own tasks (built-in, and the demo a `run --demo` left): nothing is
    // missing.
    let prune = scheduler_core::TaskDecl::cron("cronmesh.prune_runs", "17 3 * * *")
        .handler("cronmesh::prune_runs");
    let demo = scheduler_core::TaskDecl::cron("demo.heartbeat", "*/10 * * * * *")
        .handler("cronmesh::demo_heartbeat");
    store::sync_code_tasks(&db, &[prune.clone(), demo], &|_| true)
        .await
        .unwrap();
    let out = cronmesh(dir.path(), &["check"], &[]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("no valid tasks registered"));

    // An application's binary registered its code tasks here; this binary has none.
    let invoice =
        scheduler_core::TaskDecl::cron("billing.invoice", "0 2 * * *").handler("billing::invoice");
    store::sync_code_tasks(&db, &[prune, invoice], &|_| true)
        .await
        .unwrap();
    let out = cronmesh(dir.path(), &["check"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("billing.invoice"), "{text}");
    assert!(text.contains("use the_library as _;"), "{text}");
}
