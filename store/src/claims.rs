//! Claims: the insert that makes a fire this node's to run. The `task_run` row for
//! `(task_name, fire_ts_ms)` is inserted by whoever comes first; every other insert of the
//! same fire does nothing, which is what keeps a fire to one run across the cluster.

use std::collections::HashSet;

use entity::prelude::*;
use entity::task_run::{self, Column as C, RunStatus};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait,
    IdenStatic, Value,
};

use crate::error::Result;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The fire is ours to run.
    Claimed,
    /// Someone already claimed this fire; it must not run again.
    Taken,
    /// Overlap is forbidden and another fire of the task is running somewhere in the
    /// cluster; the fire was recorded `skipped_overlap`.
    Overlap,
}

/// The columns a `running` claim writes, with the claim's values: the one list both claim
/// statements built here use (`claim_runs`, `claim_unless_running`), so a new column cannot be
/// added to one and forgotten in the other. (`claim_run` and `insert_finished_runs` insert
/// whole rows through the entity, `whole_row`, every column checked by the compiler.)
fn claim_columns(run: &task_run::Model) -> [(C, Value); 7] {
    [
        (C::RunId, run.run_id.as_str().into()),
        (C::TaskName, run.task_name.as_str().into()),
        (C::FireTsMs, run.fire_ts_ms.into()),
        (C::Attempt, run.attempt.into()),
        (C::NodeId, run.node_id.as_str().into()),
        (C::Status, run.status.as_str().into()),
        (C::StartedAt, run.started_at.into()),
    ]
}

fn columns_of(run: &task_run::Model) -> Vec<C> {
    claim_columns(run).into_iter().map(|(c, _)| c).collect()
}

fn values_of(run: &task_run::Model) -> Vec<Expr> {
    claim_columns(run)
        .into_iter()
        .map(|(_, v)| Expr::val(v))
        .collect()
}

fn on_fire_conflict_do_nothing() -> OnConflict {
    OnConflict::columns([C::TaskName, C::FireTsMs])
        .do_nothing()
        .to_owned()
}

fn building(e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("building the claim statement: {e}"))
}

/// Claims a fire for `run.node_id`. With `forbid_overlap`, a fire of the same task still
/// `running` anywhere makes this one `skipped_overlap` instead. Each step is one statement
/// (no read-then-write transaction, which SQLite would refuse under concurrent writers).
pub async fn claim_fire(
    db: &DatabaseConnection,
    run: &task_run::Model,
    forbid_overlap: bool,
) -> Result<ClaimOutcome> {
    if !forbid_overlap {
        return Ok(if claim_run(db, run).await? {
            ClaimOutcome::Claimed
        } else {
            ClaimOutcome::Taken
        });
    }
    if claim_unless_running(db, run).await? {
        return Ok(ClaimOutcome::Claimed);
    }
    // Not inserted: the fire already has a row, or another fire of the task is running.
    let now = chrono::Utc::now();
    let skipped = task_run::Model {
        status: RunStatus::SkippedOverlap,
        finished_at: Some(now),
        duration_ms: Some(0),
        error: Some(
            "another run of this task is still running in the cluster (overlap: forbid)".to_owned(),
        ),
        ..run.clone()
    };
    Ok(if claim_run(db, &skipped).await? {
        ClaimOutcome::Overlap
    } else {
        ClaimOutcome::Taken
    })
}

/// `INSERT .. SELECT .. WHERE NOT EXISTS (a running row of another fire) ON CONFLICT DO NOTHING`.
async fn claim_unless_running(db: &DatabaseConnection, run: &task_run::Model) -> Result<bool> {
    let busy = Query::select()
        .expr(Expr::val(1))
        .from(TaskRun)
        .and_where(Expr::col(C::TaskName).eq(run.task_name.as_str()))
        .and_where(crate::recovery::unsettled())
        .and_where(Expr::col(C::Status).eq(RunStatus::Running.as_str()))
        .and_where(Expr::col(C::FireTsMs).ne(run.fire_ts_ms))
        // This node's own runs are ruled on by its executor, which knows when they end
        // before the buffered outcome reaches the database.
        .and_where(Expr::col(C::NodeId).ne(run.node_id.as_str()))
        .to_owned();
    let select = Query::select()
        .exprs(values_of(run))
        .and_where(Expr::exists(busy).not())
        .to_owned();
    let insert = Query::insert()
        .into_table(TaskRun)
        .columns(columns_of(run))
        .select_from(select)
        .map_err(building)?
        .on_conflict(on_fire_conflict_do_nothing())
        .to_owned();
    Ok(db.execute(&insert).await?.rows_affected() == 1)
}

/// Claims many fires in one statement: returns the run ids of the rows this call inserted
/// (`RETURNING`, which SQLite has since 3.35). A fire whose row already existed is not among
/// them.
pub async fn claim_runs(
    db: &DatabaseConnection,
    runs: &[task_run::Model],
) -> Result<HashSet<String>> {
    let Some(first) = runs.first() else {
        return Ok(HashSet::new());
    };
    let mut insert = Query::insert();
    insert.into_table(TaskRun).columns(columns_of(first));
    for run in runs {
        insert.values(values_of(run)).map_err(building)?;
    }
    insert
        .on_conflict(on_fire_conflict_do_nothing())
        .returning_col(C::RunId);
    let mut claimed = HashSet::with_capacity(runs.len());
    for row in db.query_all(&insert).await? {
        claimed.insert(row.try_get::<String>("", C::RunId.as_str())?);
    }
    Ok(claimed)
}

/// Rows per statement of [`insert_finished_runs`]: 11 values a row stays well under SQLite's
/// 32,766 bind parameters.
const FINISHED_CHUNK: usize = 500;

/// Inserts the finished rows of fires that did not run (`misfired`, `skipped_overlap`), many
/// per statement, each unless its fire already has a row (whoever wrote first wins, as for a
/// claim). Returns how many were inserted. Under overload a node gives up thousands of fires a
/// second; a statement per row would be the next thing it falls behind on.
pub async fn insert_finished_runs(
    db: &DatabaseConnection,
    runs: &[task_run::Model],
) -> Result<u64> {
    let mut inserted = 0;
    for chunk in runs.chunks(FINISHED_CHUNK) {
        inserted += TaskRun::insert_many(chunk.iter().map(whole_row))
            .on_conflict(on_fire_conflict_do_nothing())
            .exec_without_returning(db)
            .await?;
    }
    Ok(inserted)
}

/// Every column of a fire's row but its id, as an insert sets them.
fn whole_row(run: &task_run::Model) -> task_run::ActiveModel {
    task_run::ActiveModel {
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
        fires: Set(run.fires),
        ..Default::default()
    }
}

/// Inserts a fire's row, whole, unless the fire has one. `true` = inserted: for a `running`
/// row, this caller owns the fire; for a finished row (a fire that did not run), the record
/// is written. `false` = the fire already has a row.
pub async fn claim_run(db: &impl ConnectionTrait, run: &task_run::Model) -> Result<bool> {
    let inserted = TaskRun::insert(whole_row(run))
        .on_conflict(on_fire_conflict_do_nothing())
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}
