//! The moving parts of cronmesh: actors, task handlers, task registration and storage.
//!
//! A code task is an async fn plus a declaration, registered where the code lives:
//!
//! ```
//! use scheduler_actors::{CodeTasks, TaskContext, TaskFailure, cron_task};
//! use scheduler_core::{Registry, TaskDecl};
//!
//! async fn send_digest(ctx: TaskContext) -> Result<(), TaskFailure> {
//!     let _span = ctx.span().entered();
//!     Ok(())
//! }
//!
//! cron_task!(
//!     TaskDecl::cron("mail.digest", "0 30 7 * * MON-FRI").timezone("Europe/Berlin").owner("mail-team"),
//!     send_digest
//! );
//!
//! let tasks = CodeTasks::from_inventory();
//! let registry = Registry::build(tasks.decls().to_vec(), Vec::new());
//! assert!(registry.get("mail.digest").is_some());
//! ```
//!
//! A node is started with [`NodeBuilder`] inside an actix `System`: a [`SchedulerActor`]
//! sends `Fire` messages to per-task [`ExecutorActor`]s, which take fire locks from the
//! [`LockActor`] and write run state through the [`PersistenceActor`].

mod admin_http;
pub mod builtin;
mod executor;
mod handler;
pub mod lock;
pub mod metrics;
mod node;
pub mod notices;
mod persistence;
mod redis_lock;
mod registration;
mod scheduler;
pub mod store;

pub use executor::{ExecutorActor, ExecutorDeps, ExecutorState, Fire, FireReason};
pub use handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};
#[doc(hidden)]
pub use inventory;
pub use lock::{LockActor, LockBackend, MemoryLockBackend, RestartLocks};
pub use metrics::{GetMetrics, Metered, Metrics, MetricsSnapshot};
pub use node::{Node, NodeBuilder, NodeConfig, NodeError, known_handlers};
pub use persistence::{
    ClaimRun, Flush, Heartbeat, PersistenceActor, RecordFinish, RecordSkipped, RecordTaskState,
    RestartPersistence,
};
pub use redis_lock::RedisLockBackend;
pub use registration::{CodeTask, CodeTasks};
pub use scheduler::{
    ListScheduled, Pause, Reload, Resume, ScheduledTaskView, SchedulerActor, Shutdown, TriggerNow,
};
