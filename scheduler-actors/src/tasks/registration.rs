//! Code tasks: declared next to their code with [`cron_task!`](crate::cron_task), collected
//! at start-up from every linked module.
//!
//! See the crate documentation for a complete example.

use std::collections::BTreeMap;
use std::sync::Arc;

use scheduler_core::TaskDecl;

use super::handler::TaskHandler;

/// One code task as the macro registers it. Built in a `static`, hence the fn pointers.
pub struct CodeTask {
    /// Builds the declaration.
    pub declare: fn() -> TaskDecl,
    /// Builds the handler.
    pub handler: fn() -> Arc<dyn TaskHandler>,
    /// The handler's path, stored as the task's `handler`.
    pub handler_name: &'static str,
    /// Source file of the declaration.
    pub file: &'static str,
    /// Source line of the declaration.
    pub line: u32,
}

inventory::collect!(CodeTask);

/// Registers a code task: a [`TaskDecl`] expression and an async handler fn.
#[macro_export]
macro_rules! cron_task {
    ($decl:expr, $handler:path $(,)?) => {
        $crate::inventory::submit! {
            $crate::CodeTask {
                declare: || $decl,
                handler: || ::std::sync::Arc::new($handler),
                handler_name: concat!(module_path!(), "::", stringify!($handler)),
                file: file!(),
                line: line!(),
            }
        }
    };
}

/// The code tasks a binary runs, with their handlers.
#[derive(Clone, Default)]
pub struct CodeTasks {
    decls: Vec<TaskDecl>,
    handlers: BTreeMap<String, Arc<dyn TaskHandler>>,
}

impl CodeTasks {
    /// No tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every task registered with [`cron_task!`](crate::cron_task) in the linked binary.
    pub fn from_inventory() -> Self {
        let mut tasks = Self::new();
        for t in inventory::iter::<CodeTask> {
            let decl = (t.declare)().origin(&format!("{}:{}", t.file, t.line));
            tasks = tasks.with_handler(decl, t.handler_name, (t.handler)());
        }
        tasks
    }

    /// Adds a task whose handler is registered under `handler_name`.
    pub fn with_handler(
        mut self,
        decl: TaskDecl,
        handler_name: &str,
        handler: Arc<dyn TaskHandler>,
    ) -> Self {
        let decl = if decl.handler.is_empty() {
            decl.handler(handler_name)
        } else {
            decl
        };
        self.handlers.insert(decl.handler.clone(), handler);
        self.decls.push(decl);
        self
    }

    /// The declarations, in registration order.
    pub fn decls(&self) -> &[TaskDecl] {
        &self.decls
    }

    /// A handler by name.
    pub fn handler(&self, name: &str) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(name).cloned()
    }

    /// Every handler, by name.
    pub(crate) fn handlers(&self) -> impl Iterator<Item = (&String, &Arc<dyn TaskHandler>)> {
        self.handlers.iter()
    }
}

#[cfg(test)]
mod tests {
    use scheduler_core::Registry;

    use super::*;
    use crate::tasks::{TaskContext, TaskFailure};

    async fn tidy(_ctx: TaskContext) -> Result<(), TaskFailure> {
        Ok(())
    }

    crate::cron_task!(
        TaskDecl::cron("registration_test.tidy", "0 3 * * *").owner("test"),
        tidy
    );
    crate::cron_task!(TaskDecl::cron("registration_test.tidy", "0 4 * * *"), tidy);
    crate::cron_task!(
        TaskDecl::cron("registration_test.broken", "0 0 31 2 *"),
        tidy
    );

    #[test]
    fn macro_registers_tasks_with_origin_and_handler() {
        let tasks = CodeTasks::from_inventory();
        assert_eq!(tasks.decls().len(), 3);
        let first = &tasks.decls()[0];
        assert!(
            first.origin.contains("registration.rs:"),
            "{}",
            first.origin
        );
        assert!(
            first.handler.ends_with("registration::tests::tidy"),
            "{}",
            first.handler
        );
        assert!(tasks.handler(&first.handler).is_some());

        let registry = Registry::build(tasks.decls().to_vec(), Vec::new());
        let problems: Vec<String> = registry
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("declared twice")));
        assert!(problems.iter().any(|p| p.contains("can never fire")));
    }
}
