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

mod handler;
mod registration;
pub mod store;

pub use handler::{TaskContext, TaskFailure, TaskFuture, TaskHandler, TaskOutput};
#[doc(hidden)]
pub use inventory;
pub use registration::{CodeTask, CodeTasks};
