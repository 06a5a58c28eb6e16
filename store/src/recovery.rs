//! Runs that lost their node: found, abandoned, or taken over as the next attempt; and the
//! runs an earlier process of this node left behind.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduled_task;
use entity::task_run::{Column as C, RunStatus};
use sea_orm::sea_query::{Alias, Expr, Func, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, FromQueryResult,
    IdenStatic, QueryFilter, QueryOrder, QuerySelect,
};

use crate::error::Result;

/// A run that lost its node: `running` on a node declared dead, or `interrupted` by a
/// shutdown, of a task that may be recovered.
#[derive(Debug, Clone, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct OrphanRun {
    /// Row id.
    pub id: i64,
    /// Task.
    pub task_name: String,
    /// The run id of the attempt that lost its node.
    pub run_id: String,
    /// Fire.
    pub fire_ts_ms: i64,
    /// The attempt that was running.
    pub attempt: i32,
    /// Its node.
    pub node_id: String,
    /// `running` or `interrupted`.
    pub status: String,
    /// Whether the task wants a re-run.
    pub recover: bool,
}

/// Rows per page when left-over runs are settled: one statement per page, bounded memory, so an
/// overloaded node that left hundreds of thousands of runs `running` is settled in steps.
pub const SETTLE_PAGE: u64 = 1000;

/// The rows still to be settled, as the partial index `ix_task_run_unsettled` says it
/// (migration `m20261207_000001_write_path`): every query for them repeats this term, which
/// SQLite needs to use that index (and which keeps Postgres off the primary key).
pub(crate) fn unsettled() -> Expr {
    Expr::cust("task_run.status IN ('running', 'interrupted')")
}

/// Which left-over runs [`orphan_runs`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphans<'a> {
    /// `running` on this node, which is dead or stopped (nobody is behind them): see
    /// [`gone_nodes_with_runs`].
    RunningOn(&'a str),
    /// First attempts `interrupted` by a shutdown, of tasks that have `recover`.
    Interrupted,
}

/// Dead or stopped nodes that still hold `running` rows: usually none, found with one probe of
/// the unsettled index per such node.
pub async fn gone_nodes_with_runs(db: &DatabaseConnection) -> Result<Vec<String>> {
    use entity::scheduler_node::{Column as N, NodeState};
    let holds_runs = Query::select()
        .expr(Expr::val(1))
        .from(TaskRun)
        .and_where(unsettled())
        .and_where(Expr::col((TaskRun, C::Status)).eq(RunStatus::Running.as_str()))
        .and_where(Expr::col((TaskRun, C::NodeId)).equals((SchedulerNode, N::NodeId)))
        .to_owned();
    let select = Query::select()
        .column((SchedulerNode, N::NodeId))
        .from(SchedulerNode)
        .and_where(
            Expr::col((SchedulerNode, N::State))
                .is_in([NodeState::Dead.as_str(), NodeState::Stopped.as_str()]),
        )
        .and_where(Expr::exists(holds_runs))
        .to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<String>("", N::NodeId.as_str())?))
        .collect()
}

/// Left-over runs of one kind, a page at a time in row order after `after_id`. Each kind is
/// one range of the unsettled index, read in order: a page costs its own rows, however many
/// finished rows the table holds.
pub async fn orphan_runs(
    db: &DatabaseConnection,
    which: Orphans<'_>,
    after_id: i64,
    limit: u64,
) -> Result<Vec<OrphanRun>> {
    use entity::scheduled_task::Column as T;
    let recover = Expr::col((ScheduledTask, T::Recover));
    let mut select = Query::select()
        .columns([
            (TaskRun, C::Id),
            (TaskRun, C::TaskName),
            (TaskRun, C::RunId),
            (TaskRun, C::FireTsMs),
            (TaskRun, C::Attempt),
            (TaskRun, C::NodeId),
            (TaskRun, C::Status),
        ])
        .expr_as(Func::if_null(recover.clone(), false), Alias::new("recover"))
        .from(TaskRun)
        .left_join(
            ScheduledTask,
            Expr::col((ScheduledTask, T::Name)).equals((TaskRun, C::TaskName)),
        )
        .and_where(unsettled())
        // The first page has no cursor: `id > 0` would make the planner read the whole
        // primary key alongside the unsettled rows (seen on Postgres with 600,000 rows).
        .and_where_option((after_id > 0).then(|| Expr::col((TaskRun, C::Id)).gt(after_id)))
        .order_by((TaskRun, C::Id), sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    match which {
        Orphans::RunningOn(node) => select
            .and_where(Expr::col((TaskRun, C::Status)).eq(RunStatus::Running.as_str()))
            .and_where(Expr::col((TaskRun, C::NodeId)).eq(node)),
        Orphans::Interrupted => select
            .and_where(Expr::col((TaskRun, C::Status)).eq(RunStatus::Interrupted.as_str()))
            .and_where(Expr::col((TaskRun, C::Attempt)).eq(1))
            .and_where(recover.eq(true)),
    };
    let backend = db.get_database_backend();
    Ok(OrphanRun::find_by_statement(backend.build(&select))
        .all(db)
        .await?)
}

/// An update of an orphaned run's row that applies only while the row is as the reaper saw it
/// (same attempt, `status`): a peer that settled or took it over first wins.
fn still_as_seen(run: &OrphanRun, status: &str) -> sea_orm::UpdateMany<TaskRun> {
    TaskRun::update_many()
        .filter(C::Id.eq(run.id))
        .filter(C::Attempt.eq(run.attempt))
        .filter(C::Status.eq(status))
}

/// Records dead nodes' runs as `abandoned`: one statement per node of the page, each row only
/// while it is still `running` as that attempt (a peer that settled it first wins). Returns
/// the rows this call abandoned.
pub async fn abandon_runs(
    db: &DatabaseConnection,
    runs: &[OrphanRun],
    now: DateTime<Utc>,
) -> Result<Vec<OrphanRun>> {
    let mut by_node: std::collections::BTreeMap<&str, Vec<&OrphanRun>> = Default::default();
    for run in runs {
        by_node.entry(run.node_id.as_str()).or_default().push(run);
    }
    let mut done = Vec::new();
    for (node, rows) in by_node {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let updated = TaskRun::update_many()
            .col_expr(C::Status, Expr::value(RunStatus::Abandoned.as_str()))
            .col_expr(C::FinishedAt, Expr::value(now))
            .col_expr(
                C::Error,
                Expr::value(format!("node {node} died while this ran")),
            )
            .filter(C::Id.is_in(ids))
            .filter(C::Status.eq(RunStatus::Running.as_str()))
            .filter(C::NodeId.eq(node))
            .exec_with_returning(db)
            .await?;
        // As seen: same attempt (a row re-run since as another attempt is not this one).
        for row in updated {
            if let Some(seen) = rows
                .iter()
                .find(|r| r.id == row.id && r.attempt == row.attempt)
            {
                done.push((*seen).clone());
            }
        }
    }
    Ok(done)
}

/// Takes an orphaned fire over as the next attempt on `node_id`: the row becomes `running`
/// again with attempt + 1, so the old attempt's late writes change nothing. `true` if this
/// caller won it.
pub async fn take_over_run(
    db: &DatabaseConnection,
    run: &OrphanRun,
    node_id: &str,
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let res = still_as_seen(run, &run.status)
        .col_expr(C::Status, Expr::value(RunStatus::Running.as_str()))
        .col_expr(C::Attempt, Expr::value(run.attempt + 1))
        .col_expr(C::NodeId, Expr::value(node_id))
        .col_expr(C::RunId, Expr::value(run_id))
        .col_expr(C::StartedAt, Expr::value(now))
        .col_expr(C::FinishedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::DurationMs, Expr::value(Option::<i64>::None))
        .col_expr(
            C::Error,
            Expr::value(format!(
                "attempt {} on node {} was {}",
                run.attempt, run.node_id, run.status
            )),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Settles the runs a previous process with this node id left `running` (it crashed or was
/// killed): `interrupted` where the task has `recover` (so a node re-runs it), `abandoned`
/// otherwise. Called before the node registers as running.
pub async fn settle_previous_runs(
    db: &DatabaseConnection,
    node_id: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let recoverable = || {
        Query::select()
            .column(scheduled_task::Column::Name)
            .from(scheduled_task::Entity)
            .and_where(Expr::col(scheduled_task::Column::Recover).eq(true))
            .to_owned()
    };
    let mut settled = 0;
    for (status, in_recoverable) in [
        (RunStatus::Interrupted, true),
        (RunStatus::Abandoned, false),
    ] {
        // A page at a time (the ids of the next page, then one UPDATE of them), so hundreds of
        // thousands of left-over runs are settled in bounded steps.
        loop {
            let column = Expr::col(C::TaskName);
            let which = if in_recoverable {
                column.in_subquery(recoverable())
            } else {
                column.not_in_subquery(recoverable())
            };
            let ids: Vec<i64> = TaskRun::find()
                .select_only()
                .column(C::Id)
                .filter(C::NodeId.eq(node_id))
                .filter(unsettled())
                .filter(C::Status.eq(RunStatus::Running.as_str()))
                .filter(which)
                .order_by_asc(C::Id)
                .limit(SETTLE_PAGE)
                .into_tuple()
                .all(db)
                .await?;
            if ids.is_empty() {
                break;
            }
            settled += TaskRun::update_many()
                .col_expr(C::Status, Expr::value(status.as_str()))
                .col_expr(C::FinishedAt, Expr::value(now))
                .col_expr(
                    C::Error,
                    Expr::value(format!("node {node_id} restarted while this ran")),
                )
                .filter(C::Id.is_in(ids))
                .filter(C::Status.eq(RunStatus::Running.as_str()))
                .exec(db)
                .await?
                .rows_affected;
        }
    }
    Ok(settled)
}
