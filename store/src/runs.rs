//! `task_run` rows after the claim: outcomes, fires that did not run, history and pruning.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::task_run::{self, Column as C, RunStatus};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, IdenStatic, QueryFilter, QueryOrder, QuerySelect,
};

use crate::batch::{Field, update_from_values};
use crate::error::Result;

/// The end of a run, written only if the row is still this claim's and still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    /// Task.
    pub task_name: String,
    /// Fire.
    pub fire_ts_ms: i64,
    /// The writer's attempt.
    pub attempt: i32,
    /// The writer's claim (`task_run.run_id`): the fencing token. A take-over gives the row a
    /// new run id, so an older claim's writes match nothing.
    pub run_id: String,
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

/// What an outcome writes, keyed by `run_id` (the first field).
fn outcome_fields() -> [Field<FinishedRun>; 6] {
    [
        Field::new(C::RunId.as_str(), |r| r.run_id.as_str().into()),
        Field::new(C::Status.as_str(), |r| r.status.as_str().into()),
        Field::new(C::FinishedAt.as_str(), |r| r.finished_at.into()),
        Field::new(C::DurationMs.as_str(), |r| r.duration_ms.into()),
        Field::new(C::Error.as_str(), |r| r.error.clone().into()),
        Field::new(C::Output.as_str(), |r| r.output.clone().into()),
    ]
}

/// Writes outcomes, one statement per chunk: each row by its run id (the claim's fencing
/// token) and only while it is still `running`. Returns how many rows changed; fewer than
/// given means some claims were taken over meanwhile, and their late outcome changed nothing.
pub async fn finish_runs(db: &DatabaseConnection, runs: &[FinishedRun]) -> Result<u64> {
    let fields = outcome_fields();
    let [key, set @ ..] = &fields;
    let assignments: Vec<String> = set.iter().map(|f| format!("{0} = v.{0}", f.name)).collect();
    let update = format!(
        "UPDATE task_run SET {} FROM v WHERE task_run.{key} = v.{key} AND task_run.{status} = '{running}'",
        assignments.join(", "),
        key = key.name,
        status = C::Status.as_str(),
        running = RunStatus::Running.as_str(),
    );
    update_from_values(db, runs, &fields, &update).await
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this task.
    pub task: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only runs that went wrong: failed, timed out, panicked, lost their lock, abandoned or
    /// interrupted.
    pub failed_only: bool,
    /// At most this many, newest first.
    pub limit: u64,
    /// Only fires at or after this instant (epoch ms).
    pub since_ms: Option<i64>,
    /// Only fires before this instant (epoch ms).
    pub until_ms: Option<i64>,
    /// Only runs older than this one, `(fire_ts_ms, id)`: the cursor of the previous page.
    pub before: Option<(i64, i64)>,
}

/// Runs, newest fire first.
pub async fn list_runs(
    db: &DatabaseConnection,
    filter: &RunFilter,
) -> Result<Vec<task_run::Model>> {
    let mut q = TaskRun::find();
    if let Some(t) = &filter.task {
        q = q.filter(C::TaskName.eq(t));
    }
    if let Some(s) = filter.status {
        if matches!(s, RunStatus::Running | RunStatus::Interrupted) {
            // A range of the unsettled index; other statuses are found along the fire order.
            q = q.filter(crate::recovery::unsettled());
        }
        q = q.filter(C::Status.eq(s.as_str()));
    }
    if filter.failed_only {
        q = q.filter(
            C::Status.is_in(
                [
                    RunStatus::Failed,
                    RunStatus::TimedOut,
                    RunStatus::Panicked,
                    RunStatus::LockLost,
                    RunStatus::Abandoned,
                    RunStatus::Interrupted,
                ]
                .map(RunStatus::as_str),
            ),
        );
    }
    if let Some(since) = filter.since_ms {
        q = q.filter(C::FireTsMs.gte(since));
    }
    if let Some(until) = filter.until_ms {
        q = q.filter(C::FireTsMs.lt(until));
    }
    if let Some((fire, id)) = filter.before {
        q = q.filter(
            sea_orm::Condition::any().add(C::FireTsMs.lt(fire)).add(
                sea_orm::Condition::all()
                    .add(C::FireTsMs.eq(fire))
                    .add(C::Id.lt(id)),
            ),
        );
    }
    Ok(q.order_by_desc(C::FireTsMs)
        .order_by_desc(C::Id)
        .limit(filter.limit.max(1))
        .all(db)
        .await?)
}

/// The last `per_task` runs of each task named, newest first, as `(fire_ts_ms, status)`: one
/// small indexed query per task (the task and fire time index), so a task with a long history
/// costs no more than one with a short one.
pub async fn recent_statuses(
    db: &DatabaseConnection,
    names: &[String],
    per_task: u64,
) -> Result<std::collections::HashMap<String, Vec<(i64, String)>>> {
    let mut out = std::collections::HashMap::with_capacity(names.len());
    for name in names {
        let rows: Vec<(i64, String)> = TaskRun::find()
            .select_only()
            .column(C::FireTsMs)
            .column(C::Status)
            .filter(C::TaskName.eq(name))
            .order_by_desc(C::FireTsMs)
            .limit(per_task)
            .into_tuple()
            .all(db)
            .await?;
        out.insert(name.clone(), rows);
    }
    Ok(out)
}

/// Runs with status `running`, newest first, at most `limit` (what runs where, now).
pub async fn running_runs(db: &DatabaseConnection, limit: u64) -> Result<Vec<task_run::Model>> {
    Ok(TaskRun::find()
        .filter(crate::recovery::unsettled())
        .filter(C::Status.eq(RunStatus::Running.as_str()))
        .order_by_desc(C::FireTsMs)
        .limit(limit)
        .all(db)
        .await?)
}

/// Fires of tasks whose names start with `prefix` with a row whose fire time is in
/// `[from_ms, to_ms)`, counted by status (what a benchmark checks against what it expected).
/// A row that stands for several fires (`fires`) counts them all, at its last fire's time.
pub async fn count_runs_by_status(
    db: &DatabaseConnection,
    prefix: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<std::collections::BTreeMap<String, u64>> {
    let rows: Vec<(String, i64)> = TaskRun::find()
        .select_only()
        .column(C::Status)
        .column_as(C::Fires.sum(), "n")
        .filter(C::TaskName.starts_with(prefix))
        .filter(C::FireTsMs.gte(from_ms))
        .filter(C::FireTsMs.lt(to_ms))
        .group_by(C::Status)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(status, n)| (status, n.max(0) as u64))
        .collect())
}

/// How many runs of tasks whose names start with `prefix` are still `running` (after a node
/// stopped: none should be).
pub async fn count_running(db: &DatabaseConnection, prefix: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(TaskRun::find()
        .filter(crate::recovery::unsettled())
        .filter(C::Status.eq(RunStatus::Running.as_str()))
        .filter(C::TaskName.starts_with(prefix))
        .count(db)
        .await?)
}

/// Deletes finished runs that started before `before`. Running rows are kept whatever their
/// age: they are the fencing record of a fire in progress.
pub async fn prune_runs(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64> {
    Ok(TaskRun::delete_many()
        .filter(C::StartedAt.lt(before))
        .filter(C::Status.ne(RunStatus::Running.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes every run of tasks whose name starts with `prefix`, whatever its status (a
/// benchmark clearing its own earlier runs). Returns how many went.
pub async fn remove_runs_with_prefix(db: &DatabaseConnection, prefix: &str) -> Result<u64> {
    Ok(TaskRun::delete_many()
        .filter(C::TaskName.starts_with(prefix))
        .exec(db)
        .await?
        .rows_affected)
}

/// One run by its run id.
pub async fn get_run(db: &DatabaseConnection, run_id: &str) -> Result<task_run::Model> {
    TaskRun::find()
        .filter(C::RunId.eq(run_id))
        .one(db)
        .await?
        .ok_or_else(|| crate::StoreError::NotFound {
            what: "run",
            name: run_id.to_owned(),
        })
}

/// Every recorded fire of `task` in `[since_ms, until_ms)`, oldest first, with its status
/// (what `shadow-diff` compares with the old scheduler's runs). Only the two columns are read.
pub async fn recorded_fires(
    db: &DatabaseConnection,
    task: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<(i64, RunStatus)>> {
    Ok(TaskRun::find()
        .select_only()
        .column(C::FireTsMs)
        .column(C::Status)
        .filter(C::TaskName.eq(task))
        .filter(C::FireTsMs.gte(since_ms))
        .filter(C::FireTsMs.lt(until_ms))
        .order_by_asc(C::FireTsMs)
        .into_tuple()
        .all(db)
        .await?)
}
