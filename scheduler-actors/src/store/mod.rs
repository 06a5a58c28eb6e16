//! Database access: connecting, migrating, and the stateless queries and writes that the CLI
//! and the actors share. Every function takes the connection as an argument; nothing here
//! keeps state.
//!
//! Writes that change what a node schedules (a task's trigger, enabled flag, a trigger conf)
//! set the row's `version` to one past the table's highest, so a node notices any change by
//! watching `COUNT(*)` and `MAX(version)` alone.

mod nodes;
mod runs;
mod tasks;
mod triggers;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

pub use nodes::{NodeInfo, heartbeat, list_nodes, mark_dead_nodes, register_node, set_node_state};
pub use runs::{
    ClaimOutcome, FinishedRun, OrphanRun, RunFilter, TaskState, abandon_run, claim_fire, claim_run,
    claim_runs, finish_runs, list_runs, orphan_runs, prune_runs, record_fire_outcome,
    settle_previous_runs, take_over_run, update_task_states,
};
pub use tasks::{
    ChangeMark, StoredTask, TaskChange, change_mark, conf_names, get_task, insert_runtime_task,
    load_task_page, load_tasks, remove_task, request_run_now, set_enabled, set_trigger,
    sync_code_tasks,
};
pub use triggers::{
    add_trigger_conf, list_trigger_confs, remove_trigger_conf, set_trigger_conf, trigger_confs,
};

/// Errors of the storage layer: a database error, or a request that makes no sense
/// (unknown task, conf in use, invalid spec) explained in words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// No task of that name.
    #[error("no task named {0:?}")]
    UnknownTask(String),
    /// No trigger conf of that name.
    #[error("no trigger conf named {0:?}")]
    UnknownTriggerConf(String),
    /// The request was refused; nothing was written.
    #[error("{0}")]
    Invalid(String),
}

/// Opens a connection pool. A SQLite file is created if missing and put in WAL mode, so
/// readers (the CLI) never block the node's writes.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    let url = if is_sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_owned()
    };
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(if is_sqlite { 4 } else { 16 })
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if is_sqlite {
        // In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the
        // process loses nothing, a power cut may lose the last commits. Without it every
        // claim waits for an fsync, which caps a node at a few hundred fires a second.
        //
        // Rows come from SQLite's worker thread through a channel; the default of 50 rows
        // makes that thread wait on the reader every 50 rows when a node reads a million.
        options.map_sqlx_sqlite_opts(|o| {
            o.synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .row_buffer_size(1024)
        });
    }
    let db = Database::connect(options).await?;
    if is_sqlite && !url.contains(":memory:") && !url.contains("mode=ro") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// Replaces the password of a URL with `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when the schema has no pending migrations. Only reads: a database that was never
/// migrated is reported as not current, not given a migrations table.
pub async fn schema_is_current(db: &DatabaseConnection) -> Result<bool, DbErr> {
    let manager = migration::SchemaManager::new(db);
    if !manager.has_table("seaql_migrations").await? {
        return Ok(Migrator::migrations().is_empty());
    }
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// SQL for "one past the highest task version", used by every schedule-changing write.
pub(crate) const NEXT_TASK_VERSION: &str =
    "(SELECT COALESCE(MAX(version), 0) + 1 FROM scheduled_task)";
