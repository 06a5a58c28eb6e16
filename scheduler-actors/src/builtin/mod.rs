//! Built-in handlers, so the binary is useful without any code of one's own. Runtime tasks
//! name one of them and give its arguments as `handler_args` JSON:
//!
//! | handler | handler_args |
//! |---|---|
//! | `shell` | `{"program": "...", "args": ["..."], "env": {"K": "V"}, "cwd": "..."}` |
//! | `http` | `{"method": "POST", "url": "...", "headers": {}, "body": "...", "expect_status": 200, "timeout_secs": 30}` |
//! | `noop` | none |
//! | `sleep` | `{"ms": 250}` |

mod http;
mod shell;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use self::http::{HttpArgs, HttpHandler};
pub use self::shell::{OUTPUT_TAIL_BYTES, ShellArgs, ShellHandler};
use crate::handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};

/// Names of the built-in handlers.
pub const BUILTIN_HANDLERS: [&str; 4] = ["shell", "http", "noop", "sleep"];

/// Arguments of `sleep`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long, in milliseconds.
    pub ms: u64,
}

/// Does nothing, successfully (for tests and benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopHandler;

impl TaskHandler for NoopHandler {
    fn run(&self, _ctx: TaskContext) -> TaskFuture {
        Box::pin(async { Ok(TaskOutput::default()) })
    }
}

/// Sleeps `ms`, or until cancelled (for tests and benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct SleepHandler;

impl TaskHandler for SleepHandler {
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        Box::pin(async move {
            let args: SleepArgs =
                parse_args("sleep", ctx.args.as_ref()).map_err(TaskFailure::new)?;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(TaskOutput::default()),
                () = ctx.cancel.cancelled() => Err(TaskFailure::new("sleep cancelled")),
            }
        })
    }
}

/// Parses a handler's arguments, naming the handler and the problem.
pub(crate) fn parse_args<T: DeserializeOwned>(
    handler: &str,
    args: Option<&serde_json::Value>,
) -> Result<T, String> {
    // No arguments reads as an empty object, so the error names the missing field.
    let args = args.cloned().unwrap_or_else(|| serde_json::json!({}));
    serde_json::from_value(args.clone())
        .map_err(|e| format!("handler_args for `{handler}` ({args}): {e}"))
}

/// Checks `handler_args` for a built-in handler; code handlers (known to `is_code_handler`)
/// take whatever their code expects.
pub fn validate_handler_args(
    handler: &str,
    args: Option<&serde_json::Value>,
    is_code_handler: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    match handler {
        "shell" => parse_args::<ShellArgs>(handler, args).and_then(|a| a.validate()),
        "http" => parse_args::<HttpArgs>(handler, args).and_then(|a| a.validate()),
        "sleep" => parse_args::<SleepArgs>(handler, args).map(drop),
        "noop" => match args {
            None => Ok(()),
            Some(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(()),
            Some(v) => Err(format!("handler_args for `noop` must be empty, got {v}")),
        },
        other if is_code_handler(other) => Ok(()),
        other => Err(format!(
            "unknown handler {other:?}; built-in handlers are {}, or the path of a code handler linked into this binary",
            BUILTIN_HANDLERS.join(", ")
        )),
    }
}

/// The built-in handlers by name; `shell` only when enabled on this node.
pub fn builtin_handlers(shell_enabled: bool) -> HashMap<String, Arc<dyn TaskHandler>> {
    let mut map: HashMap<String, Arc<dyn TaskHandler>> = HashMap::new();
    if shell_enabled {
        map.insert("shell".to_owned(), Arc::new(ShellHandler));
    }
    map.insert("http".to_owned(), Arc::new(HttpHandler::new()));
    map.insert("noop".to_owned(), Arc::new(NoopHandler));
    map.insert("sleep".to_owned(), Arc::new(SleepHandler));
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_code(_: &str) -> bool {
        false
    }

    #[test]
    fn bad_args_are_named() {
        let cases = [
            ("shell", None, "missing field `program`"),
            (
                "shell",
                Some(serde_json::json!({"program": "echo", "argz": []})),
                "unknown field `argz`",
            ),
            ("shell", Some(serde_json::json!({"program": ""})), "program"),
            (
                "http",
                Some(serde_json::json!({"url": "ftp://x"})),
                "http:// or https://",
            ),
            (
                "http",
                Some(serde_json::json!({"url": "http://x", "method": "FETCH ME"})),
                "method",
            ),
            (
                "sleep",
                Some(serde_json::json!({"ms": "long"})),
                "invalid type",
            ),
            ("noop", Some(serde_json::json!({"x": 1})), "must be empty"),
            ("rsync", None, "unknown handler \"rsync\""),
        ];
        for (handler, args, expected) in cases {
            let err = validate_handler_args(handler, args.as_ref(), &no_code).expect_err(handler);
            assert!(err.contains(expected), "{handler}: {err}");
        }
        assert!(
            validate_handler_args("sleep", Some(&serde_json::json!({"ms": 5})), &no_code).is_ok()
        );
        assert!(validate_handler_args("my::code", None, &|h| h == "my::code").is_ok());
    }
}
