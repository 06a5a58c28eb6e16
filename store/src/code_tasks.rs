//! Code tasks at start-up: each node upserts the tasks compiled into its binary, keeping what
//! operators changed and marking rows whose handler no binary has as orphaned.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use entity::prelude::*;
use entity::scheduled_task;
use scheduler_core::TaskDecl;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use crate::error::Result;
use crate::next_task_version;
use crate::tasks::{Source, apply_spec_fields, bump_version, new_task_row, stored_trigger};

/// What start-up did to the code tasks' rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskChange {
    /// Rows created.
    pub inserted: Vec<String>,
    /// Rows whose code defaults changed.
    pub updated: Vec<String>,
    /// Rows now marked orphaned (handler missing from this binary).
    pub orphaned: Vec<String>,
    /// Code tasks whose name is taken by a runtime task (left alone).
    pub conflicts: Vec<String>,
}

/// Upserts the code tasks of this binary. Where an operator has overridden a task's schedule
/// or enabled flag, the row keeps the operator's choice. Code rows whose handler this binary
/// lacks are marked orphaned (never run, never deleted).
pub async fn sync_code_tasks(
    db: &DatabaseConnection,
    decls: &[TaskDecl],
    handler_known: &dyn Fn(&str) -> bool,
) -> Result<TaskChange> {
    let mut change = TaskChange::default();
    // Code rows, and rows that take a declared name; not the (maybe millions of) others.
    // Two reads, each by its own index (the code rows by the partial index
    // `ix_scheduled_task_code`): as one `OR` they walked the whole table.
    let code_rows = ScheduledTask::find()
        .filter(scheduled_task::Column::Source.eq("code"))
        .all(db)
        .await?;
    let named_rows = ScheduledTask::find()
        .filter(scheduled_task::Column::Name.is_in(decls.iter().map(|d| d.name.as_str())))
        .all(db)
        .await?;
    let existing: BTreeMap<String, scheduled_task::Model> = code_rows
        .into_iter()
        .chain(named_rows)
        .map(|r| (r.name.clone(), r))
        .collect();
    let now = Utc::now();
    let declared: HashSet<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    for decl in decls {
        let (trigger_json, trigger_conf_id) = stored_trigger(db, &decl.trigger).await?;
        match existing.get(&decl.name) {
            None => {
                let trigger = (trigger_json, trigger_conf_id);
                let active = new_task_row(decl, trigger, Source::Code, now);
                // Nodes starting together on a fresh database insert the same code tasks at
                // once: the first insert wins, the others find the row there and move on.
                let inserted = ScheduledTask::insert(active)
                    .on_conflict(
                        OnConflict::column(scheduled_task::Column::Name)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(db)
                    .await?;
                if inserted == 1 {
                    let id = ScheduledTask::find()
                        .filter(scheduled_task::Column::Name.eq(&decl.name))
                        .select_only()
                        .column(scheduled_task::Column::Id)
                        .into_tuple::<i64>()
                        .one(db)
                        .await?;
                    if let Some(id) = id {
                        bump_version(db, id).await?;
                    }
                    change.inserted.push(decl.name.clone());
                }
            }
            Some(row) if row.source != "code" => change.conflicts.push(decl.name.clone()),
            Some(row) => {
                let mut active: scheduled_task::ActiveModel = row.clone().into();
                apply_spec_fields(&mut active, decl);
                active.orphaned = Set(false);
                if !row.schedule_overridden {
                    active.trigger_json = Set(trigger_json);
                    active.trigger_conf_id = Set(trigger_conf_id);
                    active.enabled = Set(decl.enabled);
                }
                if active.is_changed() {
                    active.updated_at = Set(now);
                    active.update(db).await?;
                    bump_version(db, row.id).await?;
                    change.updated.push(decl.name.clone());
                }
            }
        }
    }
    for row in existing.values() {
        if row.source == "code"
            && !row.orphaned
            && !declared.contains(row.name.as_str())
            && !handler_known(&row.handler)
        {
            ScheduledTask::update_many()
                .col_expr(scheduled_task::Column::Orphaned, Expr::value(true))
                .col_expr(scheduled_task::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    scheduled_task::Column::Version,
                    Expr::value(next_task_version(db).await?),
                )
                .filter(scheduled_task::Column::Id.eq(row.id))
                .exec(db)
                .await?;
            change.orphaned.push(row.name.clone());
        }
    }
    Ok(change)
}

/// Names of the code tasks in the database declared by some application's `cron_task!`:
/// without cronmesh's own (the built-in tasks and the demo task, whose handlers are
/// `cronmesh::...`).
pub async fn code_task_names(db: &DatabaseConnection) -> Result<Vec<String>> {
    let names: Vec<(String, String)> = ScheduledTask::find()
        .filter(scheduled_task::Column::Source.eq("code"))
        .select_only()
        .column(scheduled_task::Column::Name)
        .column(scheduled_task::Column::Handler)
        .order_by_asc(scheduled_task::Column::Name)
        .into_tuple()
        .all(db)
        .await?;
    Ok(names
        .into_iter()
        .filter(|(name, handler)| {
            !crate::tasks::is_built_in(name) && !handler.starts_with("cronmesh::")
        })
        .map(|(name, _)| name)
        .collect())
}
