//! `task_run` rows: claims, outcomes, history; and the per-task status fields they update.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduled_task;
use entity::task_run::{self, RunStatus};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
    sea_query::{Expr, OnConflict},
};

use super::StoreError;

/// Claims a fire: inserts its `running` row unless one exists. `true` = this caller owns the
/// fire; `false` = someone already claimed it (it must not run).
pub async fn claim_run(
    db: &impl ConnectionTrait,
    run: &task_run::Model,
) -> Result<bool, StoreError> {
    let inserted = TaskRun::insert(task_run::ActiveModel {
        run_id: Set(run.run_id.clone()),
        task_name: Set(run.task_name.clone()),
        fire_ts_ms: Set(run.fire_ts_ms),
        attempt: Set(run.attempt),
        node_id: Set(run.node_id.clone()),
        status: Set(run.status),
        started_at: Set(run.started_at),
        finished_at: Set(run.finished_at),
        duration_ms: Set(run.duration_ms),
        error: Set(run.error.clone()),
        output: Set(run.output.clone()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([task_run::Column::TaskName, task_run::Column::FireTsMs])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

/// The end of a run, written only if the row is still this attempt's and still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    /// Task.
    pub task_name: String,
    /// Fire.
    pub fire_ts_ms: i64,
    /// The writer's attempt: the fencing token.
    pub attempt: i32,
    /// Outcome.
    pub status: RunStatus,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How long it ran.
    pub duration_ms: i64,
    /// Error message, if any.
    pub error: Option<String>,
    /// Output tail, if any.
    pub output: Option<String>,
}

/// Writes outcomes in one transaction. Returns how many rows each write changed (0 when the
/// fence refused it: another attempt owns the fire now).
pub async fn finish_runs(
    db: &DatabaseConnection,
    runs: &[FinishedRun],
) -> Result<Vec<u64>, StoreError> {
    let txn = db.begin().await?;
    let mut changed = Vec::with_capacity(runs.len());
    for r in runs {
        let res = TaskRun::update_many()
            .col_expr(task_run::Column::Status, Expr::value(r.status.as_str()))
            .col_expr(task_run::Column::FinishedAt, Expr::value(r.finished_at))
            .col_expr(task_run::Column::DurationMs, Expr::value(r.duration_ms))
            .col_expr(task_run::Column::Error, Expr::value(r.error.clone()))
            .col_expr(task_run::Column::Output, Expr::value(r.output.clone()))
            .filter(task_run::Column::TaskName.eq(&r.task_name))
            .filter(task_run::Column::FireTsMs.eq(r.fire_ts_ms))
            .filter(task_run::Column::Attempt.eq(r.attempt))
            .filter(task_run::Column::Status.eq(RunStatus::Running.as_str()))
            .exec(&txn)
            .await?;
        changed.push(res.rows_affected);
    }
    txn.commit().await?;
    Ok(changed)
}

/// A fire that did not run (`skipped_overlap`, `misfired`): one finished row, unless the
/// fire already has one.
pub async fn record_fire_outcome(
    db: &impl ConnectionTrait,
    run: &task_run::Model,
) -> Result<bool, StoreError> {
    claim_run(db, run).await
}

/// A task's status fields after a fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Task.
    pub task_name: String,
    /// Fire time of the last fire processed.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Its status.
    pub last_status: Option<RunStatus>,
    /// The next fire.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// Writes task status fields; they are not configuration, so `version` does not move.
pub async fn update_task_states(
    db: &DatabaseConnection,
    states: &[TaskState],
) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    for s in states {
        let mut update = ScheduledTask::update_many().col_expr(
            scheduled_task::Column::NextRunAt,
            Expr::value(s.next_run_at),
        );
        if let Some(last) = s.last_run_at {
            update = update.col_expr(scheduled_task::Column::LastRunAt, Expr::value(last));
        }
        if let Some(status) = s.last_status {
            update = update.col_expr(
                scheduled_task::Column::LastStatus,
                Expr::value(status.as_str()),
            );
        }
        update
            .filter(scheduled_task::Column::Name.eq(&s.task_name))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this task.
    pub task: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// At most this many, newest first.
    pub limit: u64,
}

/// Runs, newest fire first.
pub async fn list_runs(
    db: &DatabaseConnection,
    filter: &RunFilter,
) -> Result<Vec<task_run::Model>, StoreError> {
    let mut q = TaskRun::find();
    if let Some(t) = &filter.task {
        q = q.filter(task_run::Column::TaskName.eq(t));
    }
    if let Some(s) = filter.status {
        q = q.filter(task_run::Column::Status.eq(s.as_str()));
    }
    Ok(q.order_by_desc(task_run::Column::FireTsMs)
        .order_by_desc(task_run::Column::Id)
        .limit(filter.limit.max(1))
        .all(db)
        .await?)
}

/// Deletes finished runs that started before `before`. Running rows are kept whatever their
/// age: they are the fencing record of a fire in progress.
pub async fn prune_runs(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(TaskRun::delete_many()
        .filter(task_run::Column::StartedAt.lt(before))
        .filter(task_run::Column::Status.ne(RunStatus::Running.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}
