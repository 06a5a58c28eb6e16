//! Every query cronmesh makes: the node's actors, the CLI and the benchmark all read and write
//! the database through these functions and nothing else.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), store::StoreError> {
//! use scheduler_core::TaskDecl;
//!
//! let db = store::connect("sqlite::memory:").await?;
//! store::migrate(&db).await?;
//! let decl = TaskDecl::cron("mail.digest", "30 7 * * MON-FRI").handler("noop");
//! // Every change says who makes it: it is written to the audit trail with the change.
//! let who = store::Who::new("cli:alice");
//! store::insert_runtime_task(&db, &decl, &|_| Ok(()), &who).await?;
//! let task = store::get_task(&db, "mail.digest").await?;
//! assert_eq!(task.row.module, "mail");
//! // Asking for a name that is not there is its own kind of error.
//! assert!(matches!(
//!     store::get_task(&db, "mail.nope").await,
//!     Err(store::StoreError::NotFound { what: "task", .. })
//! ));
//! # Ok(()) }
//! ```
//!
//! Every function takes the connection as an argument; nothing here keeps state. Column lists
//! are written once per statement kind (see `claims.rs`, `runs.rs`, `task_status.rs`), from
//! the entities' column enums, so the compiler checks every name.
//!
//! Writes that change what a node schedules (a task's trigger, enabled flag, a trigger conf)
//! set the row's `version` to the next value of a counter (a sequence on Postgres, a counter
//! row on SQLite), so a node notices any change by
//! watching `COUNT(*)`, `MAX(version)` and `MAX(id)` alone (see [`change_mark`]).

mod alerts;
mod audit;
mod batch;
mod claims;
mod cluster;
mod code_tasks;
mod database;
mod error;
mod nodes;
mod recovery;
mod rows;
mod runs;
mod schedule_rows;
mod sessions;
mod task_changes;
mod task_json;
mod task_status;
mod tasks;
mod triggers;

pub use alerts::{
    DeliveryFilter, FAILURE_STATUSES, SilentTask, delivery_json, failed_before, last_sent_at,
    list_deliveries, record_delivery, run_at, silent_tasks, tasks_naming_alert_routes,
};
pub use audit::{AuditFilter, Who, audit_json, list_audit};
pub use claims::{ClaimOutcome, claim_fire, claim_run, claim_runs, insert_finished_runs};
pub use cluster::{ClusterPause, cluster_pause, set_cluster_pause};
pub use code_tasks::{TaskChange, code_task_names, sync_code_tasks};
pub use database::{
    SchemaState, check_database_url, connect, connect_existing, holds_only_cronmesh_tables,
    migrate, redact_url, redact_urls_in, require_current_schema, schema_is_current, schema_state,
    sqlite_path, vacuum,
};
pub use error::{Result, StoreError};
pub use nodes::{
    NodeInfo, heartbeat, list_nodes, mark_dead_nodes, node_json, register_node, set_node_state,
};
pub use recovery::{
    OrphanRun, Orphans, SETTLE_PAGE, abandon_runs, gone_nodes_with_runs, orphan_runs,
    settle_previous_runs, take_over_run,
};
pub use rows::{new_run_id, not_run_row, running_row};
pub use runs::{
    FinishedRun, RunFilter, count_running, count_runs_by_status, finish_runs, get_run, list_runs,
    prune_runs, recent_statuses, recorded_fires, remove_runs_with_prefix, running_runs,
};
pub use schedule_rows::{ScheduleRow, load_schedule_page};
pub use sessions::{create_session, end_session, find_session};
pub use task_changes::{
    CUTOVER_LEAD, cut_over, insert_runtime_task, remove_task, remove_task_if, request_run_now,
    set_enabled, set_enabled_if, set_shadow, update_task_decl,
};
pub use task_status::{TaskState, update_task_states};
pub use tasks::{
    ChangeMark, StoredTask, TaskQuery, TaskSort, change_mark, conf_names, get_task,
    insert_runtime_tasks, is_built_in, load_task_page, load_tasks, load_tasks_by_ids, query_tasks,
    remove_tasks_with_prefix, task_names_in_module,
};
pub use triggers::{
    add_trigger_conf, conf_json, list_trigger_confs, remove_trigger_conf, set_trigger_conf,
    trigger_confs,
};

/// Versions must commit in the order they are handed out, or a node that saw a higher one
/// would never notice a lower one committed after it: on Postgres the writers of a change take
/// turns from here to their commit (an advisory lock the transaction holds; taking it again in
/// the same transaction is free).
pub(crate) async fn take_version_turn(db: &impl sea_orm::ConnectionTrait) -> Result<()> {
    db.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({VERSION_LOCK})"))
        .await?;
    Ok(())
}

/// Begins the transaction of an operator's change with the writers' turn already taken: on
/// Postgres [`take_version_turn`]; on SQLite the database's write lock (a write that changes
/// nothing), so the transaction never reads a snapshot that a writer committed past before it
/// could write (SQLite would refuse that write at once instead of waiting its turn).
pub(crate) async fn begin_change(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let txn = db.begin().await?;
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => take_version_turn(&txn).await?,
        _ => {
            txn.execute_unprepared("UPDATE version_counter SET value = value WHERE name = 'task'")
                .await?;
        }
    }
    Ok(txn)
}

/// Key of the Postgres advisory lock that orders task versions.
const VERSION_LOCK: i64 = 0x6372_6f6e_7665_7273;

/// The next task version, for every schedule-changing write: from a sequence on Postgres and
/// a counter row on SQLite (whose writers take turns), so two writers never get the same
/// version, as they could reading `MAX(version) + 1` at once.
pub(crate) async fn next_task_version(db: &impl sea_orm::ConnectionTrait) -> Result<i64> {
    let backend = db.get_database_backend();
    if backend == sea_orm::DbBackend::Postgres {
        take_version_turn(db).await?;
    }
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "SELECT nextval('task_version_seq') AS v",
        _ => {
            "UPDATE version_counter SET value = value + 1 WHERE name = 'task' RETURNING value AS v"
        }
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| {
            StoreError::Db(sea_orm::DbErr::Custom(
                "the task version counter is missing; run 'cronmesh migrate'".to_owned(),
            ))
        })?;
    Ok(row.try_get::<i64>("", "v")?)
}
