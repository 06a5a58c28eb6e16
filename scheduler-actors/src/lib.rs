//! The moving parts of cronmesh: the actors of a node, the tasks they run, and their metrics.
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
//! A node is started with [`NodeBuilder`] inside an actix `System` and steered through the
//! [`Node`] handle it gives back; [`NodeHandle::subscribe`] streams its [`RunEvent`]s. Inside, a
//! [`SchedulerActor`] sends fires to one executor actor per task, which takes fire locks from
//! the [`LockActor`] and writes run state through the [`PersistenceActor`]. Every query goes
//! through the `store` crate.
//!
//! The README's "As a library" section has a complete program; `examples/embedded-app` is a
//! whole application (tasks in a library crate, a node binary, a command-line binary).
//!
//! Rooms: `node/` wires the actors together; `scheduler/`, `executor/`, `lock/` and
//! `persistence/` hold one actor each; `tasks/` what tasks run; `metrics/` what is measured;
//! `health` what a node knows of itself; `redis_topology` where Redis is (one server, a
//! cluster, sentinels); `change_notices` the Redis pub/sub both ways;
//! `admin_http` the admin server.

mod admin_http;
pub mod alerts;
pub mod api;
pub mod change_notices;
mod console;
mod error;
pub mod events;
mod executor;
mod fire_event;
mod health;
mod lock;
mod metrics;
mod node;
mod persistence;
pub mod redis_topology;
mod scheduler;
pub mod tasks;

/// The actix this crate is built on: use it (`scheduler_actors::actix`) for the System a node
/// runs in and for the application's own actors, so the versions always match.
pub use actix;
pub use error::{Error, Result};
pub use events::{RunEvent, RunEvents, RunStatus};
#[doc(hidden)]
pub use inventory;
pub use lock::{LockActor, LockBackend, MemoryLockBackend, RedisLockBackend, RenewItem};
pub use metrics::{
    ActorSnapshot, GetMetrics, Histogram, MessageSnapshot, Metered, MetricsSnapshot,
};
pub use node::{Node, NodeBuilder, NodeConfig, NodeHandle};
pub use persistence::PersistenceActor;
pub use scheduler::{
    ListScheduled, Pause, Reload, Resume, ScheduledTaskView, SchedulerActor, TriggerNow,
};
/// What a task declaration needs, so `cron_task!` code depends on this crate alone.
pub use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl};
pub use tasks::builtin;
pub use tasks::{
    AppData, CodeTask, CodeTasks, TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput,
    known_handlers,
};
