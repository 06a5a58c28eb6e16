//! `scheduler_node` rows: who is alive.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduler_node::{self, NodeState};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, ExprTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict},
};

use crate::error::Result;

/// What a node says about itself when it starts.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Its id.
    pub node_id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// cronmesh version.
    pub version: String,
    /// Admin HTTP URL.
    pub admin_url: Option<String>,
}

/// Registers (or re-registers) a node as running.
pub async fn register_node(
    db: &DatabaseConnection,
    node: &NodeInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    SchedulerNode::insert(scheduler_node::ActiveModel {
        node_id: Set(node.node_id.clone()),
        host: Set(node.host.clone()),
        pid: Set(node.pid as i32),
        version: Set(node.version.clone()),
        admin_url: Set(node.admin_url.clone()),
        started_at: Set(now),
        last_heartbeat: Set(now),
        state: Set(NodeState::Running),
    })
    .on_conflict(
        OnConflict::column(scheduler_node::Column::NodeId)
            .update_columns([
                scheduler_node::Column::Host,
                scheduler_node::Column::Pid,
                scheduler_node::Column::Version,
                scheduler_node::Column::AdminUrl,
                scheduler_node::Column::StartedAt,
                scheduler_node::Column::LastHeartbeat,
                scheduler_node::Column::State,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Declares dead every running or draining node whose heartbeat is older than `timeout`
/// (except `me`). Returns the nodes this call declared dead. On Postgres both the heartbeat
/// and this comparison use the database's clock, so skew between nodes cannot make a live
/// node look dead; SQLite serves a single node, whose own clock is the only one.
pub async fn mark_dead_nodes(
    db: &DatabaseConnection,
    timeout: std::time::Duration,
    me: &str,
) -> Result<Vec<String>> {
    let timeout_ms = timeout.as_millis() as i64;
    let stale_condition = if db.get_database_backend() == DbBackend::Postgres {
        Expr::cust(format!(
            "last_heartbeat < CURRENT_TIMESTAMP - interval '{timeout_ms} milliseconds'"
        ))
    } else {
        let cutoff = Utc::now() - chrono::Duration::milliseconds(timeout_ms);
        Expr::col(scheduler_node::Column::LastHeartbeat).lt(cutoff)
    };
    let stale = SchedulerNode::find()
        .filter(
            scheduler_node::Column::State
                .is_in([NodeState::Running.as_str(), NodeState::Draining.as_str()]),
        )
        .filter(stale_condition)
        .filter(scheduler_node::Column::NodeId.ne(me))
        .all(db)
        .await?;
    let mut dead = Vec::new();
    for node in stale {
        // Conditional on what we saw, so a heartbeat that lands meanwhile wins.
        let res = SchedulerNode::update_many()
            .col_expr(
                scheduler_node::Column::State,
                Expr::value(NodeState::Dead.as_str()),
            )
            .filter(scheduler_node::Column::NodeId.eq(&node.node_id))
            .filter(scheduler_node::Column::LastHeartbeat.eq(node.last_heartbeat))
            .exec(db)
            .await?;
        if res.rows_affected == 1 {
            dead.push(node.node_id);
        }
    }
    Ok(dead)
}

/// Records that a node is alive.
pub async fn heartbeat(db: &DatabaseConnection, node_id: &str, now: DateTime<Utc>) -> Result<()> {
    let at = if db.get_database_backend() == DbBackend::Postgres {
        Expr::cust("CURRENT_TIMESTAMP")
    } else {
        Expr::value(now)
    };
    SchedulerNode::update_many()
        .col_expr(scheduler_node::Column::LastHeartbeat, at)
        .filter(scheduler_node::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    // A node declared dead while it was only stalled is alive again (its runs were already
    // handed over; its late writes are fenced off by their run ids).
    SchedulerNode::update_many()
        .col_expr(
            scheduler_node::Column::State,
            Expr::value(NodeState::Running.as_str()),
        )
        .filter(scheduler_node::Column::NodeId.eq(node_id))
        .filter(scheduler_node::Column::State.eq(NodeState::Dead.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves a node to a new state.
pub async fn set_node_state(
    db: &DatabaseConnection,
    node_id: &str,
    state: NodeState,
) -> Result<()> {
    SchedulerNode::update_many()
        .col_expr(scheduler_node::Column::State, Expr::value(state.as_str()))
        .filter(scheduler_node::Column::NodeId.eq(node_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Every node, by id.
pub async fn list_nodes(db: &DatabaseConnection) -> Result<Vec<scheduler_node::Model>> {
    Ok(SchedulerNode::find()
        .order_by_asc(scheduler_node::Column::NodeId)
        .all(db)
        .await?)
}

/// A node as the CLI (`nodes --json`) and the API show it, its heartbeat's age from `now`.
pub fn node_json(n: &scheduler_node::Model, now: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "node_id": n.node_id,
        "host": n.host,
        "pid": n.pid,
        "version": n.version,
        "admin_url": n.admin_url,
        "state": n.state.as_str(),
        "started_at": scheduler_core::rfc3339(n.started_at),
        "last_heartbeat": scheduler_core::rfc3339(n.last_heartbeat),
        "heartbeat_age_ms": (now - n.last_heartbeat).num_milliseconds(),
    })
}
