//! `alert_delivery`: every alert a node sent, or gave up on.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// One alert to one route.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_delivery")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The route's name (`[[alerts.routes]]`).
    pub route: String,
    /// `failed`, `timed_out`, ..., `recovered`, `silent`, `test`.
    pub event: String,
    pub task_name: String,
    /// The run it is about (none for `silent` and `test`).
    pub run_id: Option<String>,
    pub fire_ts_ms: Option<i64>,
    /// The node that sent it.
    pub node_id: String,
    /// `sent` (the receiver answered 2xx) or `failed` (every attempt failed, or the receiver
    /// refused it for good).
    pub state: String,
    pub attempts: i32,
    /// The receiver's last HTTP status, if it answered.
    pub http_status: Option<i32>,
    /// Why the last attempt failed (never the route's URL: it may hold a token).
    pub error: Option<String>,
    /// How many alerts of the same route and task the throttle held back before this one.
    pub suppressed: i64,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
