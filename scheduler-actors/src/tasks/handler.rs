//! What a task runs: the [`TaskHandler`] trait and the context each run gets.
//!
//! Any `async fn(TaskContext) -> Result<(), TaskFailure>` is a handler. Handlers that report
//! output (such as the built-in `shell`) implement the trait directly.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    /// The application's state, as given to [`NodeBuilder::app_data`](crate::NodeBuilder::app_data).
    pub(crate) data: AppData,
}

/// Values an application hands its handlers, one per type: a database pool, a client, its
/// configuration. Cheap to clone (shared). A value is found by its own type: given an
/// `Arc<Pool>`, it is `data::<Arc<Pool>>()`; given a `Pool`, `data::<Pool>()`.
#[derive(Clone, Default)]
pub struct AppData(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl AppData {
    /// Adds `value`, replacing an earlier value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The same values and `value` (for [`TaskContext::for_test`]).
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// The value of type `T`, if one was given.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|v| v.clone().downcast::<T>().ok())
    }
}

impl fmt::Debug for AppData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppData({} value(s))", self.0.len())
    }
}

impl TaskContext {
    /// A context for calling a handler outside a node (in the application's own tests): a
    /// fire of `task` at `fire_time`, attempt 1, on node `test`, with `data`.
    pub fn for_test(task: &str, fire_time: DateTime<Utc>, data: AppData) -> Self {
        TaskContext {
            task: task.to_owned(),
            run_id: uuid::Uuid::new_v4().to_string(),
            fire_time,
            attempt: 1,
            node: "test".to_owned(),
            args: None,
            cancel: CancellationToken::new(),
            data,
        }
    }

    /// The same context with `handler_args` (for testing a handler that reads them).
    pub fn with_args(mut self, args: serde_json::Value) -> Self {
        self.args = Some(args);
        self
    }

    /// The application's value of type `T`, given to the node with
    /// [`NodeBuilder::app_data`](crate::NodeBuilder::app_data): how a handler reaches a
    /// database pool or a client. `None` if none of that type was given.
    ///
    /// ```
    /// use scheduler_actors::{TaskContext, TaskFailure};
    ///
    /// struct Mailer { from: String }
    ///
    /// async fn send_digest(ctx: TaskContext) -> Result<(), TaskFailure> {
    ///     let mailer = ctx
    ///         .data::<Mailer>()
    ///         .ok_or_else(|| TaskFailure::new("no Mailer given to the node"))?;
    ///     println!("sending as {}", mailer.from);
    ///     Ok(())
    /// }
    /// ```
    pub fn data<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.data.get::<T>()
    }

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
