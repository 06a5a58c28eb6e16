//! Built-in handlers, so the binary is useful without any code of one's own. Runtime tasks
//! name one of them and give its arguments as `handler_args` JSON. [`BUILTINS`] is the one
//! table of them: name, constructor, argument check and a line of documentation. A new
//! built-in is a file here and a row there.

mod http;
mod shell;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use self::http::{HttpArgs, HttpHandler};
pub use self::shell::{OUTPUT_TAIL_BYTES, ShellArgs, ShellHandler};
use super::handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};

/// One built-in handler.
pub struct Builtin {
    /// The name runtime tasks give as `handler`.
    pub name: &'static str,
    /// Makes the handler.
    pub make: fn() -> Arc<dyn TaskHandler>,
    /// Checks `handler_args`, naming the handler and what is wrong.
    pub check_args: fn(Option<&serde_json::Value>) -> Result<(), String>,
    /// Its arguments and what it does, in one line.
    pub doc: &'static str,
    /// It runs programs on the node, so a node may refuse it (`handlers.shell_enabled`).
    pub runs_programs: bool,
}

/// Every built-in handler.
pub const BUILTINS: [Builtin; 4] = [
    Builtin {
        name: "shell",
        make: || Arc::new(ShellHandler::default()),
        check_args: |args| parse_args::<ShellArgs>("shell", args).and_then(ShellArgs::validate),
        doc: r#"`{"program": "...", "args": ["..."], "env": {"K": "V"}, "cwd": "..."}`: runs the program (no implicit shell) in its own process group"#,
        runs_programs: true,
    },
    Builtin {
        name: "http",
        make: || Arc::new(HttpHandler::new()),
        check_args: |args| parse_args::<HttpArgs>("http", args).and_then(HttpArgs::validate),
        doc: r#"`{"method": "POST", "url": "...", "headers": {}, "body": "...", "expect_status": 200, "timeout_secs": 30}`: one HTTP request"#,
        runs_programs: false,
    },
    Builtin {
        name: "noop",
        make: || Arc::new(NoopHandler),
        check_args: |args| match args {
            None => Ok(()),
            Some(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(()),
            Some(v) => Err(format!("handler_args for `noop` must be empty, got {v}")),
        },
        doc: "no arguments: succeeds at once",
        runs_programs: false,
    },
    Builtin {
        name: "sleep",
        make: || Arc::new(SleepHandler),
        check_args: |args| parse_args::<SleepArgs>("sleep", args).map(drop),
        doc: r#"`{"ms": 250}`: sleeps, cancellable"#,
        runs_programs: false,
    },
];

/// The built-in of that name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

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
    // No arguments reads as an empty object, so the error names the missing field. The
    // arguments themselves are not repeated: they may hold a token (an http header), and
    // serde quotes a string of the wrong type whole.
    let args = args.cloned().unwrap_or_else(|| serde_json::json!({}));
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let why = without_quoted_strings(&e.into_inner().to_string());
        if path == "." || path.is_empty() {
            format!("handler_args for `{handler}`: {why}")
        } else {
            format!("handler_args for `{handler}`: field `{path}`: {why}")
        }
    })
}

/// `text` with the content of every double-quoted string left out.
fn without_quoted_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        out.push_str("\"...\"");
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
    }
    out
}

/// Checks `handler_args` for a built-in handler; code handlers (known to `is_code_handler`)
/// take whatever their code expects.
pub fn validate_handler_args(
    handler: &str,
    args: Option<&serde_json::Value>,
    is_code_handler: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    match builtin(handler) {
        Some(b) => (b.check_args)(args),
        None if is_code_handler(handler) => Ok(()),
        None => {
            let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
            Err(format!(
                "unknown handler {handler:?}; built-in handlers are {}, or the path of a code handler linked into this binary",
                names.join(", ")
            ))
        }
    }
}

/// The built-in handlers by name; those that run programs only when `programs_enabled`.
pub fn builtin_handlers(programs_enabled: bool) -> HashMap<String, Arc<dyn TaskHandler>> {
    BUILTINS
        .iter()
        .filter(|b| programs_enabled || !b.runs_programs)
        .map(|b| (b.name.to_owned(), (b.make)()))
        .collect()
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
