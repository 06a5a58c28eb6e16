//! `scheduler_node`: one row per node process, with its heartbeat.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// A node.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduler_node")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub node_id: String,
    pub host: String,
    pub pid: i32,
    /// cronmesh version the node runs.
    pub version: String,
    /// Where its admin HTTP server listens, if it has one.
    pub admin_url: Option<String>,
    pub started_at: DateTimeUtc,
    pub last_heartbeat: DateTimeUtc,
    pub state: NodeState,
}

/// A node's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum NodeState {
    #[sea_orm(string_value = "running")]
    Running,
    /// Shutting down gracefully.
    #[sea_orm(string_value = "draining")]
    Draining,
    #[sea_orm(string_value = "stopped")]
    Stopped,
    /// Heartbeat went stale; declared dead by a peer.
    #[sea_orm(string_value = "dead")]
    Dead,
}

impl NodeState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Running => "running",
            NodeState::Draining => "draining",
            NodeState::Stopped => "stopped",
            NodeState::Dead => "dead",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
