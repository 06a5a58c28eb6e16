//! The audit trail: who changed what, written in the same transaction as the change, for
//! every change made through the CLI or the API (both call the same store functions).

use chrono::Utc;
use entity::audit_event;
use entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::error::Result;

/// Who makes a change, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// An API token's name, or `cli:<os user>`.
    pub actor: String,
    /// The reason given, where one is asked for (a cluster pause).
    pub reason: Option<String>,
}

impl Who {
    /// A change made as `actor`.
    pub fn new(actor: impl Into<String>) -> Self {
        Who {
            actor: actor.into(),
            reason: None,
        }
    }

    /// The same, with a reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Writes one audit event (inside the caller's transaction).
pub(crate) async fn record(
    db: &impl ConnectionTrait,
    who: &Who,
    action: &str,
    target: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<()> {
    audit_event::ActiveModel {
        at: Set(Utc::now()),
        actor: Set(who.actor.clone()),
        action: Set(action.to_owned()),
        target: Set(target),
        before_json: Set(before.map(|v| v.to_string())),
        after_json: Set(after.map(|v| v.to_string())),
        reason: Set(who.reason.clone()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Which audit events to list: newest first, those with an id below `before_id` (the cursor
/// of the previous page), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this target (`task:<name>`, `trigger_conf:<name>`, `cluster`).
    pub target: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only events older than this one.
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

/// Audit events, newest first.
pub async fn list_audit(
    db: &DatabaseConnection,
    filter: &AuditFilter,
) -> Result<Vec<audit_event::Model>> {
    use audit_event::Column as C;
    let mut select = AuditEvent::find().order_by_desc(C::Id).limit(filter.limit);
    if let Some(target) = &filter.target {
        select = select.filter(C::Target.eq(target));
    }
    if let Some(actor) = &filter.actor {
        select = select.filter(C::Actor.eq(actor));
    }
    if let Some(action) = &filter.action {
        select = select.filter(C::Action.eq(action));
    }
    if let Some(before) = filter.before_id {
        select = select.filter(C::Id.lt(before));
    }
    Ok(select.all(db).await?)
}

/// An audit event as the CLI (`audit --json`) and the API show it.
pub fn audit_json(e: &audit_event::Model) -> serde_json::Value {
    let json = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    serde_json::json!({
        "id": e.id,
        "at": scheduler_core::rfc3339(e.at),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "before": json(&e.before_json),
        "after": json(&e.after_json),
        "reason": e.reason,
    })
}
