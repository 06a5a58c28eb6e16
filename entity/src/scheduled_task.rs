//! `scheduled_task`: one row per task, from code or defined at runtime.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// A task as stored.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduled_task")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique dotted name, `module.task`.
    #[sea_orm(unique)]
    pub name: String,
    pub module: String,
    /// Handler name: a code handler's path or a built-in (`shell`, `http`, `noop`, `sleep`).
    pub handler: String,
    /// Arguments for runtime-defined handlers (a JSON object).
    pub handler_args: Option<Json>,
    /// Shared trigger, when the task uses one (then `trigger_json` is NULL).
    pub trigger_conf_id: Option<i64>,
    /// Inline trigger in canonical JSON, when the task has its own.
    pub trigger_json: Option<String>,
    pub enabled: bool,
    pub owner: String,
    pub description: String,
    pub timeout_ms: Option<i64>,
    /// `skip`, `fire_once` or `fire_all:N`.
    pub misfire: String,
    pub misfire_grace_ms: i64,
    /// `forbid` or `allow`.
    pub overlap: String,
    pub recover: bool,
    pub lock_ttl_ms: i64,
    /// `code` (declared in a binary) or `runtime` (added through the CLI or API).
    pub source: String,
    /// A code task whose handler is no longer in any running binary: never run, kept for review.
    pub orphaned: bool,
    /// An operator changed the schedule or enabled flag; the code default no longer applies.
    pub schedule_overridden: bool,
    pub next_run_at: Option<DateTimeUtc>,
    pub last_run_at: Option<DateTimeUtc>,
    pub last_status: Option<String>,
    /// Shadow mode: fires are recorded as `shadow` rows and the handler does not run.
    pub shadow: bool,
    /// With `shadow`: from this instant on the task runs for real (`tasks cutover`).
    pub cutover_at: Option<DateTimeUtc>,
    /// Alert routes the task names besides the configured matches (a JSON array of names).
    pub alert_routes: Option<String>,
    /// The dead-man check: alert (`silent`) when the task has had no success for this long.
    pub alert_if_no_success_for_ms: Option<i64>,
    /// An operator asked for an extra run at this instant (`tasks run-now`); its fire time.
    pub run_now_at: Option<DateTimeUtc>,
    /// Bumped on every change, so nodes can tell what they have not applied yet.
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::trigger_conf::Entity",
        from = "Column::TriggerConfId",
        to = "super::trigger_conf::Column::Id"
    )]
    TriggerConf,
}

impl Related<super::trigger_conf::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TriggerConf.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
