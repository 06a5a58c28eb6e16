//! The one error type of `scheduler-core`.
//!
//! Every message names the offending value and, where there is one, what to use instead,
//! because these errors reach operators through `cronmesh check`, `cronmesh next` and the CLI.

/// Everything that can be wrong with a trigger, a task spec or a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A cron expression that does not parse or can never fire.
    #[error("cron expression {expr:?}: {problem}")]
    CronExpr {
        /// The expression as written.
        expr: String,
        /// What is wrong with it, naming the field and value.
        problem: String,
    },
    /// A time zone that is not in the IANA database.
    #[error(
        "unknown time zone {zone:?}: use an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
    )]
    UnknownZone {
        /// The zone as written.
        zone: String,
    },
    /// Trigger JSON that is malformed or has a bad field.
    #[error("trigger JSON: {problem}")]
    TriggerJson {
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A task spec field with a bad value.
    #[error("task {}: {problem}", quoted(task))]
    Task {
        /// The task's name.
        task: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A policy written as text (`fire_all:3`, `forbid`) that does not parse.
    #[error("{what} {value:?}: {problem}")]
    Policy {
        /// Which policy (`misfire`, `overlap`).
        what: &'static str,
        /// The value as written.
        value: String,
        /// What is accepted.
        problem: String,
    },
}

impl Error {
    pub(crate) fn cron(expr: &str, problem: impl Into<String>) -> Self {
        Error::CronExpr {
            expr: expr.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn trigger_json(problem: impl Into<String>) -> Self {
        Error::TriggerJson {
            problem: problem.into(),
        }
    }

    pub(crate) fn task(task: &str, problem: impl Into<String>) -> Self {
        Error::Task {
            task: task.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A value for a message: quoted, and when long only its start and its length, so a
/// 100,000-character name does not fill the terminal.
pub fn quoted(value: &str) -> String {
    const KEEP: usize = 60;
    let length = value.chars().count();
    if length <= KEEP {
        return format!("{value:?}");
    }
    let start: String = value.chars().take(KEEP).collect();
    format!("{start:?}... ({length} characters)")
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
