//! Settling left-over runs in pages: thousands of runs `running` on a dead node, or left by an
//! earlier process of this node, are all settled, a bounded page per statement, on SQLite and
//! Postgres.

use chrono::Utc;
use entity::task_run::{self, RunStatus};
use sea_orm::{DatabaseConnection, EntityTrait, IntoActiveModel};

use crate::support::postgres::TempDatabase;

/// More than two pages.
const LEFT: i64 = 2_500;

async fn left_running(db: &DatabaseConnection, node: &str, task: &str) {
    let info = store::NodeInfo {
        node_id: node.to_owned(),
        host: "test".to_owned(),
        pid: 1,
        version: "test".to_owned(),
        admin_url: None,
    };
    store::register_node(db, &info, Utc::now()).await.unwrap();
    let rows: Vec<task_run::ActiveModel> = (0..LEFT)
        .map(|i| {
            let mut row = store::running_row(
                uuid::Uuid::new_v4().to_string(),
                task,
                1_000_000 + i * 1000,
                1,
                node,
                Utc::now(),
            )
            .into_active_model();
            row.id = sea_orm::ActiveValue::NotSet;
            row
        })
        .collect();
    for chunk in rows.chunks(500) {
        entity::prelude::TaskRun::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .unwrap();
    }
}

async fn statuses(db: &DatabaseConnection, task: &str) -> Vec<RunStatus> {
    crate::support::node::runs_of(db, task)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect()
}

async fn settles_in_pages(db: &DatabaseConnection) {
    // A dead peer's runs: found a page at a time, abandoned a page per statement.
    left_running(db, "dead-peer", "left.by_peer").await;
    store::set_node_state(db, "dead-peer", entity::scheduler_node::NodeState::Dead)
        .await
        .unwrap();
    assert_eq!(
        store::gone_nodes_with_runs(db).await.unwrap(),
        vec!["dead-peer".to_owned()]
    );
    let which = store::Orphans::RunningOn("dead-peer");
    let (mut after, mut pages, mut abandoned) = (0, 0, 0);
    loop {
        let page = store::orphan_runs(db, which, after, store::SETTLE_PAGE)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() as u64 <= store::SETTLE_PAGE);
        after = last.id;
        pages += 1;
        abandoned += store::abandon_runs(db, &page, Utc::now())
            .await
            .unwrap()
            .len();
    }
    assert_eq!(abandoned as i64, LEFT);
    assert_eq!(pages, (LEFT as u64).div_ceil(store::SETTLE_PAGE));
    assert!(
        statuses(db, "left.by_peer")
            .await
            .iter()
            .all(|s| *s == RunStatus::Abandoned)
    );
    // Abandoned once: a second pass finds nothing left.
    assert!(
        store::orphan_runs(db, which, 0, store::SETTLE_PAGE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store::gone_nodes_with_runs(db).await.unwrap().is_empty());

    // An earlier process of this node: settled at start-up, every one of them.
    left_running(db, "me", "left.by_me").await;
    let settled = store::settle_previous_runs(db, "me", Utc::now())
        .await
        .unwrap();
    assert_eq!(settled as i64, LEFT);
    assert!(
        statuses(db, "left.by_me")
            .await
            .iter()
            .all(|s| *s == RunStatus::Abandoned)
    );
}

#[tokio::test]
async fn left_over_runs_are_settled_in_pages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = store::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    store::migrate(&db).await.unwrap();
    settles_in_pages(&db).await;
}

#[tokio::test]
async fn left_over_runs_are_settled_in_pages_on_postgres() {
    let pg = TempDatabase::create().await;
    let db = store::connect(pg.url()).await.unwrap();
    store::migrate(&db).await.unwrap();
    settles_in_pages(&db).await;
}
