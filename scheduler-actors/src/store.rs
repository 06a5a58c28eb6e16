//! Database access: connecting, migrating, and the stateless queries the CLI and the
//! persistence actor share. Every function takes the connection as an argument.

use std::time::Duration;

use entity::prelude::*;
use entity::trigger_conf;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait, QueryOrder,
};

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
    let db = Database::connect(options).await?;
    if is_sqlite && !url.contains(":memory:") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// True when the schema has no pending migrations.
pub async fn schema_is_current(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

/// Every shared trigger conf as (name, trigger JSON), by name.
pub async fn trigger_confs(db: &DatabaseConnection) -> Result<Vec<(String, String)>, DbErr> {
    Ok(TriggerConf::find()
        .order_by_asc(trigger_conf::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.name, c.trigger_json))
        .collect())
}
