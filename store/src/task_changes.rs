//! The changes operators make to tasks, through the CLI or the API alike: add, change, enable,
//! run now, remove. Each is checked like a new task, written in one transaction with the
//! task's new version and its audit event, and, given an `If-Match` version, only while the
//! task is still at it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduled_task;
use scheduler_core::{TaskDecl, Trigger};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};

use crate::audit::Who;
use crate::error::{Result, StoreError};
use crate::tasks::{
    BUILT_IN_MODULE, Source, apply_spec_fields, bump_version, get_task, is_built_in, new_task_row,
    stored_trigger,
};

/// Adds a runtime task. `check` validates what only the caller knows (handler names and
/// their arguments); the whole spec is checked before anything is written.
pub async fn insert_runtime_task(
    db: &DatabaseConnection,
    decl: &TaskDecl,
    check: &dyn Fn(&TaskDecl) -> Result<(), String>,
    who: &Who,
) -> Result<scheduled_task::Model> {
    validate_runtime_decl(db, decl, check, false).await?;
    if ScheduledTask::find()
        .filter(scheduled_task::Column::Name.eq(&decl.name))
        .one(db)
        .await?
        .is_some()
    {
        return Err(StoreError::conflict(format!(
            "a task named {:?} already exists",
            decl.name
        )));
    }
    let txn = crate::begin_change(db).await?;
    let trigger = stored_trigger(&txn, &decl.trigger).await?;
    let row = new_task_row(decl, trigger, Source::Runtime, Utc::now())
        .insert(&txn)
        .await
        .map_err(|e| match e.sql_err() {
            // Another writer added the same name between the check above and this insert.
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                StoreError::conflict(format!("a task named {:?} already exists", decl.name))
            }
            _ => e.into(),
        })?;
    bump_version(&txn, row.id).await?;
    let after = get_task(&txn, &decl.name).await?;
    crate::audit::record(
        &txn,
        who,
        "task.create",
        format!("task:{}", decl.name),
        None,
        Some(after.to_json()),
    )
    .await?;
    txn.commit().await?;
    Ok(after.row)
}

/// Checks a runtime task's declaration as every writer must: the whole spec (its trigger
/// conf resolved), what only the caller knows (`check`: handlers and their arguments), and
/// the reserved module.
async fn validate_runtime_decl(
    db: &DatabaseConnection,
    decl: &TaskDecl,
    check: &dyn Fn(&TaskDecl) -> Result<(), String>,
    existing: bool,
) -> Result<()> {
    let confs: BTreeMap<String, Trigger> = crate::trigger_confs(db)
        .await?
        .into_iter()
        .filter_map(|(name, json)| Trigger::from_json(&json).ok().map(|t| (name, t)))
        .collect();
    let mut problems: Vec<String> = match decl.validate(|n| confs.get(n).cloned()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    if let Err(p) = check(decl) {
        problems.push(p);
    }
    // A built-in task may be changed (its schedule, say), never added.
    if !existing && is_built_in(&decl.name) {
        problems.push(format!(
            "task {:?}: the module `{BUILT_IN_MODULE}` is reserved for cronmesh's built-in tasks",
            decl.name
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::refused(problems.join("; ")))
    }
}

/// Rewrites a task from `edit` applied to its current declaration (every change of a task's
/// fields, from the CLI's `set-trigger` as from the API's PATCH): checked like a new task,
/// written (if the task is still at `expected`, when given) with its version moved and the
/// audit event `task.update`. A changed trigger or enabled flag then wins over a code default.
pub async fn update_task_decl(
    db: &DatabaseConnection,
    name: &str,
    expected: Option<i64>,
    edit: impl FnOnce(&mut TaskDecl),
    check: &dyn Fn(&TaskDecl) -> Result<(), String>,
    who: &Who,
) -> Result<()> {
    let current = get_task(db, name).await?;
    let old = current.decl();
    let mut decl = old.clone();
    edit(&mut decl);
    decl.name = old.name.clone();
    validate_runtime_decl(db, &decl, check, true).await?;
    let trigger = stored_trigger(db, &decl.trigger).await?;
    let schedule_changed = decl.trigger != old.trigger || decl.enabled != old.enabled;
    update_task_if(db, name, expected, who, "task.update", |t| {
        apply_spec_fields(t, &decl);
        t.trigger_json = Set(trigger.0);
        t.trigger_conf_id = Set(trigger.1);
        t.enabled = Set(decl.enabled);
        // Only a change of mode is written: an edit made from an older read (set-trigger, an
        // import) must not undo a cut-over or a `tasks shadow` committed meanwhile.
        if decl.alert_routes != old.alert_routes
            || decl.alert_if_no_success_for_secs != old.alert_if_no_success_for_secs
        {
            crate::tasks::apply_alert_fields(t, &decl);
        }
        if decl.shadow != old.shadow {
            let (shadow, cutover_at) = decl.shadow.columns();
            t.shadow = Set(shadow);
            t.cutover_at = Set(cutover_at);
        }
        if schedule_changed {
            t.schedule_overridden = Set(true);
        }
    })
    .await
}

/// Locks a task's row for the rest of the transaction on Postgres (`FOR UPDATE`), so a
/// version checked in it cannot change before the write: two writers with the same `If-Match`
/// cannot both succeed. SQLite lets one writer at a time commit anyway.
async fn lock_task_row(txn: &impl ConnectionTrait, name: &str) -> Result<()> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // After the writers' turn (`begin_change`): every writer takes them in that order,
        // so none waits for another in a circle.
        ScheduledTask::find()
            .filter(scheduled_task::Column::Name.eq(name))
            .lock_exclusive()
            .one(txn)
            .await?;
    }
    Ok(())
}

/// [`StoreError::Stale`] unless the task is at the version asked for (when one is).
fn still_at(name: &str, expected: Option<i64>, current: i64) -> Result<()> {
    match expected {
        Some(expected) if expected != current => Err(StoreError::Stale {
            what: "task",
            name: name.to_owned(),
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

/// Changes one task in a transaction that also moves its version and writes the audit event
/// `action` with the task before and after.
async fn update_task(
    db: &DatabaseConnection,
    name: &str,
    who: &Who,
    action: &str,
    edit: impl FnOnce(&mut scheduled_task::ActiveModel),
) -> Result<()> {
    update_task_if(db, name, None, who, action, edit).await
}

/// [`update_task`] when the task is still at `expected` (if given); otherwise
/// [`StoreError::Stale`] and nothing written.
async fn update_task_if(
    db: &DatabaseConnection,
    name: &str,
    expected: Option<i64>,
    who: &Who,
    action: &str,
    edit: impl FnOnce(&mut scheduled_task::ActiveModel),
) -> Result<()> {
    let txn = crate::begin_change(db).await?;
    update_in(&txn, name, expected, who, action, edit).await?;
    txn.commit().await?;
    Ok(())
}

/// The body of [`update_task_if`], inside a transaction the caller commits (so several tasks
/// can change together).
async fn update_in(
    txn: &DatabaseTransaction,
    name: &str,
    expected: Option<i64>,
    who: &Who,
    action: &str,
    edit: impl FnOnce(&mut scheduled_task::ActiveModel),
) -> Result<()> {
    lock_task_row(txn, name).await?;
    let before = get_task(txn, name).await?;
    still_at(name, expected, before.row.version)?;
    let id = before.row.id;
    let mut active: scheduled_task::ActiveModel = before.row.clone().into();
    edit(&mut active);
    active.updated_at = Set(Utc::now());
    active.update(txn).await?;
    bump_version(txn, id).await?;
    let after = get_task(txn, name).await?;
    crate::audit::record(
        txn,
        who,
        action,
        format!("task:{name}"),
        Some(before.to_json()),
        Some(after.to_json()),
    )
    .await
}

/// How far ahead a cut-over must be: every node has to learn of it (a change notice, or the
/// reconcile within a second) before the fire at that instant is prepared.
pub const CUTOVER_LEAD: std::time::Duration = std::time::Duration::from_secs(10);

/// Puts tasks into shadow mode (`on`: their fires are recorded as `shadow` and their handlers
/// do not run; a cut-over set before is dropped) or out of it, all in one transaction with an
/// audit event `task.shadow` / `task.unshadow` each.
pub async fn set_shadow(
    db: &DatabaseConnection,
    names: &[String],
    on: bool,
    who: &Who,
) -> Result<()> {
    let action = if on { "task.shadow" } else { "task.unshadow" };
    let txn = crate::begin_change(db).await?;
    for name in names {
        update_in(&txn, name, None, who, action, |t| {
            t.shadow = Set(on);
            t.cutover_at = Set(None);
        })
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Cuts tasks in shadow mode over: their fires from `at` on run for real, the ones before stay
/// `shadow`. All or none, in one transaction with an audit event `task.cutover` each. Refused
/// for a task not in shadow mode or already cut over, and for an instant less than
/// [`CUTOVER_LEAD`] ahead.
pub async fn cut_over(
    db: &DatabaseConnection,
    names: &[String],
    at: DateTime<Utc>,
    who: &Who,
) -> Result<()> {
    let now = Utc::now();
    if at < now + CUTOVER_LEAD {
        return Err(StoreError::refused(format!(
            "cut-over instant {} is less than {} s ahead (now {}): every node must learn of it before that fire is prepared; give a later instant",
            scheduler_core::rfc3339(at),
            CUTOVER_LEAD.as_secs(),
            scheduler_core::rfc3339(now),
        )));
    }
    let txn = crate::begin_change(db).await?;
    for name in names {
        let row = get_task(&txn, name).await?.row;
        match scheduler_core::Shadow::from_columns(row.shadow, row.cutover_at) {
            scheduler_core::Shadow::Off => {
                return Err(StoreError::refused(format!(
                    "task {name:?} is not in shadow mode: it already runs for real; nothing to cut over"
                )));
            }
            scheduler_core::Shadow::Until(done) if done <= now => {
                return Err(StoreError::refused(format!(
                    "task {name:?} was cut over at {}: it already runs for real",
                    scheduler_core::rfc3339(done)
                )));
            }
            _ => {}
        }
        update_in(&txn, name, None, who, "task.cutover", |t| {
            t.cutover_at = Set(Some(at))
        })
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Enables or disables a task; the operator's choice then wins over the code default.
pub async fn set_enabled(
    db: &DatabaseConnection,
    name: &str,
    enabled: bool,
    who: &Who,
) -> Result<()> {
    set_enabled_if(db, name, enabled, None, who).await
}

/// [`set_enabled`] only while the task is at version `expected` (if given): otherwise
/// [`StoreError::Stale`], nothing written.
pub async fn set_enabled_if(
    db: &DatabaseConnection,
    name: &str,
    enabled: bool,
    expected: Option<i64>,
    who: &Who,
) -> Result<()> {
    let action = if enabled {
        "task.enable"
    } else {
        "task.disable"
    };
    update_task_if(db, name, expected, who, action, |t| {
        t.enabled = Set(enabled);
        t.schedule_overridden = Set(true);
    })
    .await
}

/// Asks for one extra run at `at` (its fire time). Runs once cluster-wide like any fire.
pub async fn request_run_now(
    db: &DatabaseConnection,
    name: &str,
    at: DateTime<Utc>,
    who: &Who,
) -> Result<()> {
    update_task(db, name, who, "task.run_now", |t| {
        t.run_now_at = Set(Some(at))
    })
    .await
}

/// Deletes a task row (its run history stays). A code task comes back at the next start-up
/// of a node that has it; disable it instead to keep it off.
pub async fn remove_task(db: &DatabaseConnection, name: &str, who: &Who) -> Result<()> {
    remove_task_if(db, name, None, who).await
}

/// [`remove_task`] only while the task is at version `expected` (if given): otherwise
/// [`StoreError::Stale`], nothing removed.
pub async fn remove_task_if(
    db: &DatabaseConnection,
    name: &str,
    expected: Option<i64>,
    who: &Who,
) -> Result<()> {
    let txn = crate::begin_change(db).await?;
    lock_task_row(&txn, name).await?;
    let before = get_task(&txn, name).await?;
    still_at(name, expected, before.row.version)?;
    if is_built_in(name) {
        return Err(StoreError::refused(format!(
            "task {name:?} is built in: every node brings it back at its start; disable it instead"
        )));
    }
    ScheduledTask::delete_by_id(before.row.id)
        .exec(&txn)
        .await?;
    crate::audit::record(
        &txn,
        who,
        "task.remove",
        format!("task:{name}"),
        Some(before.to_json()),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
