//! `task_run`: one row per fire of a task; the durable fencing guard.
//!
//! The row for `(task_name, fire_ts_ms)` is claimed by an insert that does nothing on
//! conflict, and every later write is conditional on `attempt` still being the writer's, so
//! a node that lost its lock can never overwrite the new owner's record.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// One fire of one task.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "task_run")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique id of this run, carried in logs and handler environments.
    #[sea_orm(unique)]
    pub run_id: String,
    /// The task's name (kept even after the task is removed, for history).
    pub task_name: String,
    /// Scheduled fire time, UTC epoch milliseconds.
    pub fire_ts_ms: i64,
    /// 1 for the first run of this fire; a recovery re-run bumps it.
    pub attempt: i32,
    pub node_id: String,
    pub status: RunStatus,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// Tail of the handler's output (e.g. the last 4 KiB of a shell task's stdout/stderr).
    pub output: Option<String>,
    /// How many fires this row stands for: 1, or for a `misfired` row written for a run of
    /// fires given up together (a node behind its schedule, the catch-up after downtime), how
    /// many; `fire_ts_ms` is then the last of them and `error` says from when.
    pub fires: i32,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RunStatus {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "timed_out")]
    TimedOut,
    #[sea_orm(string_value = "panicked")]
    Panicked,
    /// The fire lock could not be kept; the run was cancelled.
    #[sea_orm(string_value = "lock_lost")]
    LockLost,
    /// Cancelled by a graceful shutdown.
    #[sea_orm(string_value = "interrupted")]
    Interrupted,
    /// Its node died mid-run.
    #[sea_orm(string_value = "abandoned")]
    Abandoned,
    /// A previous run of the task was still running (overlap `forbid`).
    #[sea_orm(string_value = "skipped_overlap")]
    SkippedOverlap,
    /// Dropped by the misfire policy.
    #[sea_orm(string_value = "misfired")]
    Misfired,
    /// The task (or the node) is in shadow mode: the fire was computed, claimed and recorded,
    /// and its handler not run.
    #[sea_orm(string_value = "shadow")]
    Shadow,
}

impl RunStatus {
    /// The stored text (`timed_out`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Panicked => "panicked",
            RunStatus::LockLost => "lock_lost",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
            RunStatus::SkippedOverlap => "skipped_overlap",
            RunStatus::Misfired => "misfired",
            RunStatus::Shadow => "shadow",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
