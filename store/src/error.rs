//! The one error type of `store`.
//!
//! Each kind means one thing, so a caller can decide what to do (and the CLI which exit code
//! to give) from the kind alone: `Db` is the database failing, `NotFound` / `Refused` /
//! `Conflict` are a request that cannot be carried out as asked, and `NoSchema` /
//! `SchemaBehind` / `SchemaAhead` say the database does not hold the schema this binary needs.

use sea_orm::DbErr;

/// Everything that can go wrong reading or writing cronmesh's tables.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (unreachable, timed out, a statement refused by the server).
    #[error("database error: {0}")]
    Db(DbErr),
    /// A write to a database this process may only read (file or directory permissions,
    /// `mode=ro`, a read-only server); nothing was written.
    #[error("the database is read-only and this needs to write: {0}")]
    ReadOnly(DbErr),
    /// No row of that kind has that name.
    #[error("no {what} named {}", scheduler_core::quoted(name))]
    NotFound {
        /// What was looked for: `task`, `trigger conf`.
        what: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The request is not valid; nothing was written.
    #[error("{reason}")]
    Refused {
        /// What is wrong, naming the value.
        reason: String,
    },
    /// The request clashes with what is stored (a name already taken, a conf still in use);
    /// nothing was written.
    #[error("{reason}")]
    Conflict {
        /// What clashes, naming the value.
        reason: String,
    },
    /// The change was asked for against a version of the row that is no longer current (an
    /// `If-Match` that does not match); nothing was written.
    #[error(
        "{what} {name:?} is at version {current}, not {expected}: it changed meanwhile; read it again"
    )]
    Stale {
        /// What: `task`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The version the request expected.
        expected: i64,
        /// The version it has.
        current: i64,
    },
    /// The database has no cronmesh schema at all.
    #[error(
        "database {database} has no cronmesh schema: run 'cronmesh migrate' (or start a node) to create it"
    )]
    NoSchema {
        /// The database, password redacted.
        database: String,
    },
    /// The schema is older than this binary's.
    #[error("database schema is at {have}, this cronmesh needs {need}: run 'cronmesh migrate'")]
    SchemaBehind {
        /// The newest migration applied to the database.
        have: String,
        /// The newest migration this binary knows.
        need: String,
    },
    /// The schema is newer than this binary knows: a newer cronmesh migrated it.
    #[error(
        "database schema is at {have}, newer than this cronmesh knows ({need}): use the cronmesh version the nodes run"
    )]
    SchemaAhead {
        /// The newest migration applied to the database.
        have: String,
        /// The newest migration this binary knows.
        need: String,
    },
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        if is_read_only(&e) {
            StoreError::ReadOnly(e)
        } else {
            StoreError::Db(e)
        }
    }
}

/// Whether the database refused a write because it may only be read: SQLite's
/// `SQLITE_READONLY` family ("attempt to write a readonly database") or Postgres'
/// `read_only_sql_transaction` (a replica, `default_transaction_read_only`).
pub(crate) fn is_read_only(e: &DbErr) -> bool {
    let text = e.to_string();
    text.contains("readonly database") || text.contains("read-only transaction")
}

impl StoreError {
    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        StoreError::Refused {
            reason: reason.into(),
        }
    }

    pub(crate) fn conflict(reason: impl Into<String>) -> Self {
        StoreError::Conflict {
            reason: reason.into(),
        }
    }

    pub(crate) fn task_not_found(name: &str) -> Self {
        StoreError::NotFound {
            what: "task",
            name: name.to_owned(),
        }
    }

    pub(crate) fn conf_not_found(name: &str) -> Self {
        StoreError::NotFound {
            what: "trigger conf",
            name: name.to_owned(),
        }
    }

    /// Whether the request itself was at fault (not found, refused, a conflict), as opposed
    /// to the database or its schema.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::Refused { .. }
                | StoreError::Conflict { .. }
                | StoreError::Stale { .. }
        )
    }
}

/// `Result` with the crate's [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
