//! What tasks run: the [`TaskHandler`] trait and the context of a run, code tasks and their
//! registration, the built-in handlers, and the maintenance tasks every node has.

pub mod builtin;
mod handler;
pub(crate) mod maintenance;
mod registration;

use std::collections::HashMap;
use std::sync::Arc;

pub use self::handler::{AppData, TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};
pub use self::registration::{CodeTask, CodeTasks};

/// Every handler a node has, by name: the built-ins (`shell` only with `shell_enabled`,
/// passing `shell_pass_env` to its tasks), then `extra` (handlers for runtime tasks), then the
/// code tasks' own, each winning over the ones before on a name clash.
pub(crate) fn handler_table(
    shell_enabled: bool,
    shell_pass_env: &[String],
    extra: Vec<(String, Arc<dyn TaskHandler>)>,
    code: &[&CodeTasks],
) -> HashMap<String, Arc<dyn TaskHandler>> {
    let mut handlers = builtin::builtin_handlers(shell_enabled);
    if !shell_pass_env.is_empty()
        && let Some(shell) = handlers.get_mut("shell")
    {
        *shell = Arc::new(builtin::ShellHandler::passing(shell_pass_env));
    }
    handlers.extend(extra);
    for tasks in code {
        handlers.extend(tasks.handlers().map(|(n, h)| (n.clone(), h.clone())));
    }
    handlers
}

/// Handlers by name, for callers that want to check `handler_args` the way a node would.
pub fn known_handlers(
    code_tasks: &CodeTasks,
    shell_enabled: bool,
) -> HashMap<String, Arc<dyn TaskHandler>> {
    handler_table(shell_enabled, &[], Vec::new(), &[code_tasks])
}
