//! What a task runs: the [`TaskHandler`] trait and the context each run gets.
//!
//! Any `async fn(TaskContext) -> Result<(), TaskFailure>` is a handler. Handlers that report
//! output (such as the built-in `shell`) implement the trait directly.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

/// Everything a run knows about itself.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task's name.
    pub task: String,
    /// Unique id of this run (also in `task_run.run_id` and every log line of the run).
    pub run_id: String,
    /// The scheduled fire time (not when the handler started).
    pub fire_time: DateTime<Utc>,
    /// 1 for the first run of this fire, more for a recovery re-run.
    pub attempt: u32,
    /// The node running it.
    pub node: String,
    /// The task's `handler_args`, for runtime-defined handlers.
    pub args: Option<serde_json::Value>,
    /// Fires when the run must stop: timeout, lost lock or shutdown. Handlers that loop or
    /// wait should watch it; the executor stops waiting for them either way.
    pub cancel: CancellationToken,
}

impl TaskContext {
    /// A span carrying the run's fields, for the handler's own log lines.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            target: "cron_task",
            "run",
            task = %self.task,
            run_id = %self.run_id,
            fire_time = %scheduler_core::rfc3339(self.fire_time),
            node = %self.node,
            attempt = self.attempt,
        )
    }
}

/// What a successful run leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutput {
    /// Text stored with the run (e.g. the tail of a process's output).
    pub output: Option<String>,
}

/// Why a run failed. Any `std::error::Error` converts into it, so handlers can use `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The error, as recorded on the run.
    pub message: String,
    /// Output captured before the failure.
    pub output: Option<String>,
}

impl TaskFailure {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        TaskFailure {
            message: message.into(),
            output: None,
        }
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for TaskFailure {
    fn from(e: E) -> Self {
        TaskFailure::new(e.to_string())
    }
}

/// The future a handler returns.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<TaskOutput, TaskFailure>> + Send>>;

/// Runs one fire of a task.
pub trait TaskHandler: Send + Sync + 'static {
    /// Starts the run. The executor applies the timeout and catches panics.
    fn run(&self, ctx: TaskContext) -> TaskFuture;
}

impl<F, Fut> TaskHandler for F
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), TaskFailure>> + Send + 'static,
{
    fn run(&self, ctx: TaskContext) -> TaskFuture {
        let fut = self(ctx);
        Box::pin(async move { fut.await.map(|()| TaskOutput::default()) })
    }
}
