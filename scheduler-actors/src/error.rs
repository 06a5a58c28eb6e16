//! The one error type of `scheduler-actors`.
//!
//! Kinds are kept apart so a caller can act on them: the database (with the store's own kind
//! inside), the registry's typed problems, the admin server, the lock backend, an actor that
//! stopped answering, and the answers of `TriggerNow`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::MailboxError;
use scheduler_core::Problem;
use store::StoreError;

/// Everything a node, its actors or a lock backend can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database at start-up; `database` is its URL without the password.
    #[error("database {database}: {source}")]
    Database {
        /// The database, password redacted.
        database: String,
        /// What the store said.
        source: StoreError,
    },
    /// A read or write of a running node failed. Shared, so one failed statement can answer
    /// every request it carried (claims are batched).
    #[error("{0}")]
    Store(Arc<StoreError>),
    /// The code tasks have problems; every one is listed.
    #[error("{} problem(s) with the registered tasks:{}", .0.len(), list(.0))]
    Registry(Vec<Problem>),
    /// The admin HTTP server could not bind.
    #[error("admin HTTP server on {addr}: {source}")]
    Http {
        /// Address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The lock backend failed (not "the lock is taken", which is a normal answer).
    #[error("lock backend {backend}: {source}")]
    LockBackend {
        /// Which backend (`redis`, `memory`, ...).
        backend: &'static str,
        /// What it said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The lock backend did not answer in time.
    #[error("lock backend {backend}: no answer within {after:?}")]
    LockTimeout {
        /// Which backend.
        backend: &'static str,
        /// How long it was given.
        after: Duration,
    },
    /// The handler runtime could not start.
    #[error("handler runtime: {0}")]
    Runtime(std::io::Error),
    /// An actor stopped answering.
    #[error("actor unavailable: {0}")]
    Mailbox(#[from] MailboxError),
    /// An actor restarted while a request was in its care; the request was not carried out.
    #[error("the {actor} restarted before the request was carried out")]
    Restarted {
        /// Which actor.
        actor: &'static str,
    },
    /// `TriggerNow` for a task this node does not schedule.
    #[error(
        "no task named {} is scheduled on this node",
        scheduler_core::quoted(task)
    )]
    NotScheduled {
        /// The task asked for.
        task: String,
    },
    /// The node is shutting down and takes no new work.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The database is behind on this node's writes: a new fire is given up (and recorded)
    /// instead of claimed, so that the writes already waiting (run outcomes among them) are
    /// written rather than crowded out of a full buffer.
    #[error("the database is {waiting} writes behind on this node")]
    WritesBehind {
        /// Writes waiting.
        waiting: usize,
    },
}

impl Error {
    /// A lock backend failure, from whatever error the backend's client returned.
    pub fn lock_backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::LockBackend {
            backend,
            source: source.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(Arc::new(e))
    }
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
