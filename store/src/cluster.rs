//! The cluster-wide pause: one row every node reads with its change check, so no task fires
//! anywhere while it is set.

use chrono::{DateTime, Utc};
use entity::cluster_state;
use entity::prelude::*;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::audit::Who;
use crate::error::{Result, StoreError};

/// Whether the cluster is paused, since when, by whom and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterPause {
    /// No task fires on any node while true.
    pub paused: bool,
    /// The reason given for the last change.
    pub reason: Option<String>,
    /// When it last changed.
    pub changed_at: DateTime<Utc>,
    /// Who changed it last.
    pub changed_by: String,
}

impl From<cluster_state::Model> for ClusterPause {
    fn from(m: cluster_state::Model) -> Self {
        ClusterPause {
            paused: m.paused,
            reason: m.reason,
            changed_at: m.changed_at,
            changed_by: m.changed_by,
        }
    }
}

/// The cluster's pause state.
pub async fn cluster_pause(db: &impl ConnectionTrait) -> Result<ClusterPause> {
    ClusterState::find_by_id(1)
        .one(db)
        .await?
        .map(ClusterPause::from)
        .ok_or_else(|| {
            StoreError::refused("the cluster_state row is missing; run 'cronmesh migrate'")
        })
}

/// Pauses (`paused`) or resumes the whole cluster; `who` must give a reason. Recorded in the
/// audit trail with the state before and after.
pub async fn set_cluster_pause(
    db: &sea_orm::DatabaseConnection,
    paused: bool,
    who: &Who,
) -> Result<ClusterPause> {
    let Some(reason) = who.reason.clone().filter(|r| !r.trim().is_empty()) else {
        return Err(StoreError::refused(
            "a reason is required to pause or resume the cluster",
        ));
    };
    let txn = crate::begin_change(db).await?;
    let before = cluster_pause(&txn).await?;
    let after: ClusterPause = cluster_state::ActiveModel {
        id: Set(1),
        paused: Set(paused),
        reason: Set(Some(reason)),
        changed_at: Set(Utc::now()),
        changed_by: Set(who.actor.clone()),
    }
    .update(&txn)
    .await?
    .into();
    let json = |p: &ClusterPause| serde_json::to_value(p).ok();
    crate::audit::record(
        &txn,
        who,
        if paused {
            "cluster.pause"
        } else {
            "cluster.resume"
        },
        "cluster".to_owned(),
        json(&before),
        json(&after),
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}
