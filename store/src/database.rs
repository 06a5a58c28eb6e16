//! Connecting, the schema's state, migrating, and URLs fit for messages.

use std::path::PathBuf;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Order, Query};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, TransactionTrait,
};

use crate::error::{Result, StoreError};

/// Opens a connection pool, creating a SQLite file that does not exist yet. SQLite is put in
/// WAL mode, so readers (the CLI) never block the node's writes.
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    let params = if url.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    Ok(open(url, params, true).await?)
}

/// Opens a connection pool to a database that must already exist: a SQLite file is never
/// created (a missing one is [`StoreError::NoSchema`]) nor switched to WAL (a node's database
/// already is). For commands that only work on a database a node or `cronmesh migrate` has
/// set up.
pub async fn connect_existing(url: &str) -> Result<DatabaseConnection> {
    if let Some(path) = sqlite_path(url)
        && !path.exists()
    {
        return Err(StoreError::NoSchema {
            database: redact_url(url),
        });
    }
    let Some(path) = sqlite_path(url) else {
        return Ok(open(url, "", false).await?);
    };
    // A file (or directory) this process cannot write is read read-only. A WAL database is
    // read through its shared-memory file, which a read-only directory cannot get; then, and
    // only while the write-ahead log is empty (nothing committed is outside the main file,
    // and no writer has the database open), it is read as immutable.
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_empty = std::fs::metadata(&wal).map_or(true, |m| m.len() == 0);
    let tries: &[&str] = match (url.contains("mode=ro"), url.contains("mode="), wal_empty) {
        (true, _, true) => &["", "immutable=1"],
        (true, _, false) | (false, true, _) => &[""],
        (false, false, true) => &["mode=rw", "mode=ro", "mode=ro&immutable=1"],
        (false, false, false) => &["mode=rw", "mode=ro"],
    };
    let mut last = None;
    for params in tries {
        match open(url, params, false).await {
            Ok(db) => return Ok(db),
            Err(e) if crate::error::is_read_only(&e) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(
        || StoreError::Db(DbErr::Custom("no way to open the database".into())),
        StoreError::Db,
    ))
}

/// Opens a pool on `url`, with `sqlite_params` (such as `mode=rwc`) added to a SQLite file's
/// URL.
async fn open(url: &str, sqlite_params: &str, wal: bool) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    let url = if is_sqlite && !sqlite_params.is_empty() && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{sqlite_params}")
    } else {
        url.to_owned()
    };
    let mut options = ConnectOptions::new(url.clone());
    // An immutable database is read by one connection: a second one opened later could find
    // a writer that came meanwhile.
    let connections = match (is_sqlite, url.contains("immutable=1")) {
        (true, true) => 1,
        (true, false) => 4,
        (false, _) => 16,
    };
    options
        .max_connections(connections)
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
    if !is_sqlite {
        first_connection(&url).await?;
    }
    let db = Database::connect(options)
        .await
        .map_err(|e| without_url(e, &url))?;
    if wal && is_sqlite && !url.contains(":memory:") && !url.contains("mode=ro") {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// How long the first connection to a server may take.
const FIRST_CONNECTION: Duration = Duration::from_secs(5);

/// Opens one connection and closes it again, so that a server that refuses or does not answer
/// is reported at once with its own cause ("connection refused"), not after the pool's wait
/// as "pool timed out".
async fn first_connection(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::Connection;
    let failed = |why: String| {
        DbErr::Conn(sea_orm::RuntimeErr::Internal(
            why.replace(url, &redact_url(url)),
        ))
    };
    match tokio::time::timeout(FIRST_CONNECTION, sea_orm::sqlx::PgConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {} s",
            FIRST_CONNECTION.as_secs()
        ))),
    }
}

/// A connection error as the driver words it, with the URL (which it may quote whole,
/// password and all) redacted.
fn without_url(e: DbErr, url: &str) -> DbErr {
    let text = e.to_string();
    if text.contains(url) {
        DbErr::Conn(sea_orm::RuntimeErr::Internal(
            text.replace(url, &redact_url(url)),
        ))
    } else {
        e
    }
}

/// Whether `url` names a database this binary can open: a `sqlite:` URL with a file (or
/// `:memory:`) or a `postgres://` URL the driver can parse. The error says what is wrong
/// without repeating the URL (it may hold a password).
pub fn check_database_url(url: &str) -> std::result::Result<(), String> {
    use std::str::FromStr;
    let parsed = if url.starts_with("sqlite:") {
        if sqlite_path(url).is_none() && !url.contains(":memory:") {
            return Err("names no database file; write sqlite://path/to/cronmesh.db".to_owned());
        }
        sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).map(drop)
    } else {
        sea_orm::sqlx::postgres::PgConnectOptions::from_str(url).map(drop)
    };
    parsed.map_err(|e| {
        let why = e.to_string().replace(url, &redact_url(url));
        format!("does not parse ({why}); is the port a number, and is a password with `/`, `@` or `:` percent-encoded?")
    })
}

/// The file of a SQLite URL (`None` for other databases and in-memory SQLite).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// Query parameters whose values are secrets (compared without case).
const SECRET_PARAMS: [&str; 6] = [
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "secret",
    "token",
];

/// Replaces every secret in a URL with `***`, for messages and logs: the password of the
/// user info (which may itself hold `/`, `@` or `:`), and the values of query parameters such
/// as `password=`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The user info ends at the last `@` before the query: a password may hold `/` or `@`.
    let mut out = format!("{scheme}://");
    match before_query.rsplit_once('@') {
        Some((userinfo, host_path)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host_path);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) => {
                    format!("{key}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// [`redact_url`] applied to every URL inside a text (a message that quotes a value which
/// may be a URL, such as a settings error): a URL runs from its scheme to the next space or
/// quote.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let not_scheme = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| not_scheme(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Key of the Postgres advisory lock that makes migrations of one database take turns.
const MIGRATION_LOCK: i64 = 0x6372_6f6e_6d65_7368;
/// How often, and how far apart, a SQLite migration that lost a race with another process is
/// tried again.
const SQLITE_MIGRATION_TRIES: u32 = 50;
const SQLITE_MIGRATION_PAUSE: Duration = Duration::from_millis(100);

/// Applies every pending migration. A schema a newer cronmesh migrated is left alone and
/// refused ([`StoreError::SchemaAhead`]).
///
/// Processes that start together on a new database (a cluster's first start, two CLI
/// commands) take turns: on Postgres one transaction at a time holds an advisory lock around
/// all of it (DDL is transactional there); on SQLite a process whose `CREATE TABLE` lost the
/// race waits and looks again, and finds the schema its peer made.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    if let SchemaState::Ahead { have, need } = schema_state(db).await? {
        return Err(StoreError::SchemaAhead { have, need });
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        return Ok(());
    }
    let mut tries = 0;
    loop {
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(_) if schema_state(db).await? == SchemaState::Current => return Ok(()),
            Err(_) if tries < SQLITE_MIGRATION_TRIES => {
                tries += 1;
                tokio::time::sleep(SQLITE_MIGRATION_PAUSE).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reclaims the space of deleted rows and refreshes the planner's statistics of the run and
/// task tables (Postgres; SQLite needs neither). After millions of rows are deleted, every
/// query would otherwise wade through them.
pub async fn vacuum(db: &DatabaseConnection) -> Result<()> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("VACUUM ANALYZE task_run, scheduled_task")
            .await?;
    }
    Ok(())
}

/// Where a database's schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// No cronmesh migration was ever applied.
    Missing,
    /// Some, not all, of this binary's migrations are applied.
    Behind {
        /// The newest applied.
        have: String,
        /// The newest this binary has.
        need: String,
    },
    /// Exactly this binary's migrations are applied.
    Current,
    /// Migrations this binary does not know are applied (a newer cronmesh migrated it).
    Ahead {
        /// The newest applied.
        have: String,
        /// The newest this binary has.
        need: String,
    },
}

/// Reads which migrations the database has. Only reads: a database that was never migrated
/// is not given a migrations table.
pub async fn schema_state(db: &DatabaseConnection) -> Result<SchemaState> {
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let need = known.last().cloned().unwrap_or_default();
    let manager = migration::SchemaManager::new(db);
    if !manager.has_table("seaql_migrations").await? {
        return Ok(if known.is_empty() {
            SchemaState::Current
        } else {
            SchemaState::Missing
        });
    }
    let select = Query::select()
        .column(Alias::new("version"))
        .from(Alias::new("seaql_migrations"))
        .order_by(Alias::new("version"), Order::Asc)
        .to_owned();
    let applied: Vec<String> = db
        .query_all(&select)
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect::<Result<_, DbErr>>()?;
    let Some(have) = applied.last().cloned() else {
        return Ok(SchemaState::Missing);
    };
    Ok(if applied.iter().any(|v| !known.contains(v)) {
        SchemaState::Ahead { have, need }
    } else if applied.len() < known.len() {
        SchemaState::Behind { have, need }
    } else {
        SchemaState::Current
    })
}

/// The tables cronmesh's migrations create, its migration record among them.
const CRONMESH_TABLES: [&str; 10] = [
    "alert_delivery",
    "seaql_migrations",
    "trigger_conf",
    "scheduled_task",
    "task_run",
    "scheduler_node",
    "audit_event",
    "cluster_state",
    "console_session",
    "version_counter",
];

/// Whether a database holds nothing but (some of) cronmesh's own tables: empty, or being
/// migrated by another process right now. Anything else in it means it is not cronmesh's to
/// set up.
pub async fn holds_only_cronmesh_tables(db: &DatabaseConnection) -> Result<bool> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()",
    };
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await?;
    for row in rows {
        let name: String = row.try_get("", "name")?;
        if !CRONMESH_TABLES.contains(&name.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// True when the schema has no pending migrations (and none this binary does not know).
pub async fn schema_is_current(db: &DatabaseConnection) -> Result<bool> {
    Ok(schema_state(db).await? == SchemaState::Current)
}

/// Refuses a database whose schema is not this binary's, without changing anything:
/// `database` (password redacted) names it in the error.
pub async fn require_current_schema(db: &DatabaseConnection, database: &str) -> Result<()> {
    match schema_state(db).await? {
        SchemaState::Current => Ok(()),
        SchemaState::Missing => Err(StoreError::NoSchema {
            database: database.to_owned(),
        }),
        SchemaState::Behind { have, need } => Err(StoreError::SchemaBehind { have, need }),
        SchemaState::Ahead { have, need } => Err(StoreError::SchemaAhead { have, need }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://app:s3cret@127.0.0.1:5432/cron"),
            "postgres://app:***@127.0.0.1:5432/cron"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("sqlite://cronmesh.db"), "sqlite://cronmesh.db");
        assert_eq!(
            redact_url("postgres://app:pa/ss@w0rd@db.internal:5432/cron?sslmode=require"),
            "postgres://app:***@db.internal:5432/cron?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://127.0.0.1/cron?user=app&password=s3cret&PWD=x"),
            "postgres://127.0.0.1/cron?user=app&password=***&PWD=***"
        );
        assert_eq!(
            redact_url("https://user:tok@127.0.0.1/hook?token=abc&x=1"),
            "https://user:***@127.0.0.1/hook?token=***&x=1"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_a_text_are_redacted() {
        assert_eq!(
            redact_urls_in(
                r#"key `http.bind`: "postgres://app:s3cret@127.0.0.1/x" is not an address; nor redis://:pw@h:1"#
            ),
            r#"key `http.bind`: "postgres://app:***@127.0.0.1/x" is not an address; nor redis://:***@h:1"#
        );
        assert_eq!(redact_urls_in("no url here"), "no url here");
        assert_eq!(redact_urls_in("é://x:pw@h"), "é://x:***@h");
        assert_eq!(redact_urls_in("\"é://x\" ü://"), "\"é://x\" ü://");
        assert_eq!(redact_urls_in("://"), "://");
    }

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=ro"),
            Some("a/b.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn a_schema_from_a_newer_cronmesh_is_refused_not_migrated() {
        let db = connect("sqlite::memory:").await.expect("in-memory sqlite");
        migrate(&db).await.expect("migrate");
        db.execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_from_the_future', 0)",
        )
        .await
        .expect("a newer migration");
        let state = schema_state(&db).await.expect("state");
        assert!(
            matches!(&state, SchemaState::Ahead { have, .. } if have == "m29991231_000001_from_the_future"),
            "{state:?}"
        );
        let err = migrate(&db).await.expect_err("newer schema");
        assert!(matches!(err, StoreError::SchemaAhead { .. }), "{err}");
        let err = require_current_schema(&db, "x")
            .await
            .expect_err("newer schema");
        assert!(
            err.to_string().contains("newer than this cronmesh knows"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn schema_states_from_missing_to_current() {
        let db = connect("sqlite::memory:").await.expect("in-memory sqlite");
        assert_eq!(schema_state(&db).await.ok(), Some(SchemaState::Missing));
        Migrator::up(&db, Some(1)).await.expect("first migration");
        let state = schema_state(&db).await.expect("state");
        assert!(matches!(state, SchemaState::Behind { .. }), "{state:?}");
        let err = require_current_schema(&db, "sqlite::memory:")
            .await
            .expect_err("behind");
        assert!(err.to_string().contains("run 'cronmesh migrate'"), "{err}");
        migrate(&db).await.expect("migrate");
        assert_eq!(schema_state(&db).await.ok(), Some(SchemaState::Current));
    }
}
