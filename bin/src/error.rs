//! How the CLI ends: exit codes and the error line.
//!
//! 0 success; 1 a failure while working (the database or Redis unreachable, a schema that is
//! not this binary's, a node that could not start) or problems found (`check`); 2 input the
//! user gave that cannot be used (an expression, a zone, a JSON body, a config value, the name
//! of a task that does not exist). Only [`InvalidInput`] in an error's chain gives 2.

use std::process::ExitCode;

use store::StoreError;

/// Bad input from the user (exit code 2), as opposed to a failure while working (1).
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// A store error for a request that carried the user's input (a name they typed, a spec they
/// wrote): refusals, unknown names and conflicts are bad input (2); the database failing, or
/// its schema, is not (1).
pub(crate) fn user_request(e: StoreError) -> anyhow::Error {
    if e.is_request_error() {
        anyhow::Error::new(InvalidInput(e.to_string()))
    } else {
        anyhow::Error::new(e)
    }
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|cause| cause.is::<InvalidInput>()) {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// The error as one line: outermost context first, then each cause once. Libraries tend to
/// repeat their source in their own message; a cause whose text the line already holds adds
/// nothing and is left out.
pub(crate) fn report(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("pool timed out while waiting for an open connection")]
    struct Timeout;

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Repeats(#[source] Timeout);

    #[test]
    fn each_cause_is_said_once_outermost_first() {
        let e =
            anyhow::Error::new(Repeats(Timeout)).context("connecting to database sqlite://x.db");
        assert_eq!(
            report(&e),
            "connecting to database sqlite://x.db: database error: pool timed out while waiting for an open connection"
        );
    }

    #[test]
    fn only_the_users_input_gives_2() {
        let bad = anyhow::Error::new(InvalidInput("--tz \"Mars/Base\"".into())).context("adding");
        assert_eq!(exit_code(&bad), ExitCode::from(2));
        assert_eq!(
            exit_code(&anyhow::anyhow!("database down")),
            ExitCode::FAILURE
        );
        let unknown = user_request(StoreError::NotFound {
            what: "task",
            name: "a.b".into(),
        });
        assert_eq!(exit_code(&unknown), ExitCode::from(2));
        let behind = user_request(StoreError::SchemaBehind {
            have: "m1".into(),
            need: "m2".into(),
        });
        assert_eq!(exit_code(&behind), ExitCode::FAILURE);
        let down = user_request(StoreError::Db(sea_orm::DbErr::Custom("gone".into())));
        assert_eq!(exit_code(&down), ExitCode::FAILURE);
        let none = user_request(StoreError::NoSchema {
            database: "sqlite://x.db".into(),
        });
        assert_eq!(exit_code(&none), ExitCode::FAILURE);
    }
}
