//! Shared trigger confs.

use chrono::Utc;
use entity::prelude::*;
use entity::{scheduled_task, trigger_conf};
use scheduler_core::Trigger;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};

use crate::audit::Who;
use crate::error::{Result, StoreError};
use crate::next_task_version;

/// Every shared trigger conf as (name, trigger JSON), by name.
pub async fn trigger_confs(db: &DatabaseConnection) -> Result<Vec<(String, String)>> {
    Ok(list_trigger_confs(db)
        .await?
        .into_iter()
        .map(|c| (c.name, c.trigger_json))
        .collect())
}

/// Every shared trigger conf, by name.
pub async fn list_trigger_confs(db: &DatabaseConnection) -> Result<Vec<trigger_conf::Model>> {
    Ok(TriggerConf::find()
        .order_by_asc(trigger_conf::Column::Name)
        .all(db)
        .await?)
}

fn canonical(json: &str) -> Result<String> {
    Trigger::from_json(json)
        .map(|t| t.to_json())
        .map_err(|e| StoreError::refused(e.to_string()))
}

/// The longest trigger conf name.
const MAX_CONF_NAME: usize = 128;

/// A conf name: 1 to 128 letters, digits, `.`, `_` or `-`.
fn check_conf_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::refused("a trigger conf needs a name"));
    }
    if name.chars().count() > MAX_CONF_NAME {
        return Err(StoreError::refused(format!(
            "trigger conf name {}: at most {MAX_CONF_NAME} characters",
            scheduler_core::quoted(name)
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(StoreError::refused(format!(
            "trigger conf name {name:?} holds {c:?}; use letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Adds a conf; the JSON is validated and stored in canonical form.
pub async fn add_trigger_conf(
    db: &DatabaseConnection,
    name: &str,
    json: &str,
    description: &str,
    who: &Who,
) -> Result<trigger_conf::Model> {
    check_conf_name(name)?;
    let trigger_json = canonical(json)?;
    if TriggerConf::find()
        .filter(trigger_conf::Column::Name.eq(name))
        .one(db)
        .await?
        .is_some()
    {
        return Err(StoreError::conflict(format!(
            "trigger conf {name:?} already exists; use `cronmesh triggers set` to change it"
        )));
    }
    let now = Utc::now();
    let txn = crate::begin_change(db).await?;
    let conf = trigger_conf::ActiveModel {
        name: Set(name.to_owned()),
        trigger_json: Set(trigger_json),
        description: Set(description.to_owned()),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        // Another writer added the same name between the check above and this insert.
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => StoreError::conflict(format!(
            "trigger conf {name:?} already exists; use `cronmesh triggers set` to change it"
        )),
        _ => e.into(),
    })?;
    let after = conf_json(&conf);
    crate::audit::record(
        &txn,
        who,
        "trigger_conf.add",
        format!("trigger_conf:{name}"),
        None,
        Some(after),
    )
    .await?;
    txn.commit().await?;
    Ok(conf)
}

/// A conf as the audit trail and the API show it.
pub fn conf_json(conf: &trigger_conf::Model) -> serde_json::Value {
    serde_json::json!({
        "name": conf.name,
        "trigger": serde_json::from_str::<serde_json::Value>(&conf.trigger_json).ok(),
        "description": conf.description,
        "version": conf.version,
    })
}

/// Changes a conf and reschedules every task that uses it.
pub async fn set_trigger_conf(
    db: &DatabaseConnection,
    name: &str,
    json: &str,
    who: &Who,
) -> Result<u64> {
    let trigger_json = canonical(json)?;
    let txn = crate::begin_change(db).await?;
    let conf = TriggerConf::find()
        .filter(trigger_conf::Column::Name.eq(name))
        .one(&txn)
        .await?
        .ok_or_else(|| StoreError::conf_not_found(name))?;
    let conf_id = conf.id;
    let version = conf.version;
    let before = conf_json(&conf);
    let mut active: trigger_conf::ActiveModel = conf.into();
    active.trigger_json = Set(trigger_json);
    active.version = Set(version + 1);
    active.updated_at = Set(Utc::now());
    let after = conf_json(&active.update(&txn).await?);
    crate::audit::record(
        &txn,
        who,
        "trigger_conf.set",
        format!("trigger_conf:{name}"),
        Some(before),
        Some(after),
    )
    .await?;
    let touched = ScheduledTask::update_many()
        .col_expr(
            scheduled_task::Column::Version,
            Expr::value(next_task_version(&txn).await?),
        )
        .col_expr(scheduled_task::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(scheduled_task::Column::TriggerConfId.eq(conf_id))
        .exec(&txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(touched)
}

/// Removes a conf that no task uses; otherwise the error lists the tasks that use it.
pub async fn remove_trigger_conf(db: &DatabaseConnection, name: &str, who: &Who) -> Result<()> {
    let txn = crate::begin_change(db).await?;
    let conf = TriggerConf::find()
        .filter(trigger_conf::Column::Name.eq(name))
        .one(&txn)
        .await?
        .ok_or_else(|| StoreError::conf_not_found(name))?;
    let users: Vec<String> = ScheduledTask::find()
        .filter(scheduled_task::Column::TriggerConfId.eq(conf.id))
        .order_by_asc(scheduled_task::Column::Name)
        .all(&txn)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if !users.is_empty() {
        return Err(StoreError::conflict(format!(
            "trigger conf {name:?} is used by {} task(s): {}; move them to another trigger first",
            users.len(),
            users.join(", ")
        )));
    }
    TriggerConf::delete_by_id(conf.id).exec(&txn).await?;
    crate::audit::record(
        &txn,
        who,
        "trigger_conf.remove",
        format!("trigger_conf:{name}"),
        Some(conf_json(&conf)),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
