//! The domain of cronmesh: when tasks fire, and what a task is.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use scheduler_core::Trigger;
//!
//! // 02:30 does not exist in New York on 2026-03-08; the fire moves to 03:00 EDT.
//! let t = Trigger::cron("30 2 * * *", "America/New_York")?;
//! let after: DateTime<Utc> = "2026-03-07T12:00:00Z".parse().unwrap();
//! let fires: Vec<String> = t.fires_between(after, after + chrono::Duration::days(3))
//!     .map(scheduler_core::rfc3339)
//!     .collect();
//! assert_eq!(fires, ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]);
//! # Ok::<(), scheduler_core::Error>(())
//! ```
//!
//! Everything here is pure: no I/O and no clock reads. Time is always an argument, so every
//! rule can be tested with fixed instants. Actors, storage and locks live in other crates.

pub mod cron_expr;
mod describe;
mod error;
pub mod misfire;
mod preview;
mod registry;
pub mod schedule;
mod shadow;
mod task;
mod trigger;

pub use cron_expr::CronExpr;
pub use describe::{describe, describe_cron};
pub use error::{Error, Result, quoted};
pub use misfire::{CatchUp, SkippedFires, plan_catch_up};
pub use preview::{PreviewFire, preview};
pub use registry::{Problem, Registry};
pub use schedule::{CronSchedule, parse_zone};
pub use shadow::Shadow;
pub use task::{
    DEFAULT_LOCK_TTL, DEFAULT_MISFIRE_GRACE, MAX_LOCK_TTL, MIN_LOCK_TTL, MisfirePolicy,
    OverlapPolicy, TaskDecl, TaskSpec, TriggerDecl, validate_name,
};
pub use trigger::{Trigger, rfc3339};
