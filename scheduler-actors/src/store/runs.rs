//! `task_run` rows: claims, outcomes, history; and the per-task status fields they update.

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduled_task;
use entity::task_run::{self, RunStatus};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement, Value,
    sea_query::{Expr, OnConflict},
};

use super::StoreError;

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

/// Claims a fire for `run.node_id`. With `forbid_overlap`, a fire of the same task still
/// `running` anywhere makes this one `skipped_overlap` instead. Each step is one statement
/// (no read-then-write transaction, which SQLite would refuse under concurrent writers).
pub async fn claim_fire(
    db: &DatabaseConnection,
    run: &task_run::Model,
    forbid_overlap: bool,
) -> Result<ClaimOutcome, StoreError> {
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
async fn claim_unless_running(
    db: &DatabaseConnection,
    run: &task_run::Model,
) -> Result<bool, StoreError> {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::{Alias, Query};
    use task_run::Column as C;
    let busy = Query::select()
        .expr(Expr::val(1))
        .from(task_run::Entity)
        .and_where(Expr::col(C::TaskName).eq(run.task_name.as_str()))
        .and_where(Expr::col(C::Status).eq(RunStatus::Running.as_str()))
        .and_where(Expr::col(C::FireTsMs).ne(run.fire_ts_ms))
        // This node's own runs are ruled on by its executor, which knows when they end
        // before the buffered outcome reaches the database.
        .and_where(Expr::col(C::NodeId).ne(run.node_id.as_str()))
        .to_owned();
    let values: Vec<Expr> = vec![
        Expr::val(run.run_id.as_str()),
        Expr::val(run.task_name.as_str()),
        Expr::val(run.fire_ts_ms),
        Expr::val(run.attempt),
        Expr::val(run.node_id.as_str()),
        Expr::val(run.status.as_str()),
        Expr::val(run.started_at),
    ];
    let select = Query::select()
        .exprs(values)
        .and_where(Expr::exists(busy).not())
        .to_owned();
    let insert = Query::insert()
        .into_table(Alias::new("task_run"))
        .columns([
            C::RunId,
            C::TaskName,
            C::FireTsMs,
            C::Attempt,
            C::NodeId,
            C::Status,
            C::StartedAt,
        ])
        .select_from(select)
        .map_err(|e| StoreError::Invalid(format!("building the claim: {e}")))?
        .on_conflict(
            OnConflict::columns([C::TaskName, C::FireTsMs])
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    let stmt = db.get_database_backend().build(&insert);
    Ok(db.execute_raw(stmt).await?.rows_affected() == 1)
}

/// Claims many fires in one statement: returns the run ids of the rows this call inserted
/// (`RETURNING`, which SQLite has since 3.35). A fire whose row already existed is not among
/// them.
pub async fn claim_runs(
    db: &DatabaseConnection,
    runs: &[task_run::Model],
) -> Result<std::collections::HashSet<String>, StoreError> {
    use task_run::Column as C;
    if runs.is_empty() {
        return Ok(Default::default());
    }
    let mut insert = sea_orm::sea_query::Query::insert();
    insert.into_table(TaskRun).columns([
        C::RunId,
        C::TaskName,
        C::FireTsMs,
        C::Attempt,
        C::NodeId,
        C::Status,
        C::StartedAt,
    ]);
    for run in runs {
        insert
            .values([
                run.run_id.as_str().into(),
                run.task_name.as_str().into(),
                run.fire_ts_ms.into(),
                run.attempt.into(),
                run.node_id.as_str().into(),
                run.status.as_str().into(),
                run.started_at.into(),
            ])
            .map_err(|e| StoreError::Invalid(format!("building the claim: {e}")))?;
    }
    insert
        .on_conflict(
            OnConflict::columns([C::TaskName, C::FireTsMs])
                .do_nothing()
                .to_owned(),
        )
        .returning_col(C::RunId);
    let stmt = db.get_database_backend().build(&insert);
    let mut claimed = std::collections::HashSet::with_capacity(runs.len());
    for row in db.query_all_raw(stmt).await? {
        claimed.insert(row.try_get::<String>("", "run_id")?);
    }
    Ok(claimed)
}

/// Inserts a fire's row unless one exists. `true` = inserted (a `running` row: this caller
/// owns the fire); `false` = the fire already has a row (it must not run).
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

/// Rows per batched `UPDATE .. FROM` statement: at most 6 binds a row keeps every chunk well
/// under SQLite's 32,766 and Postgres' 65,535 bind parameters.
const UPDATE_CHUNK: usize = 1000;

/// `WITH v(columns) AS (VALUES (..), (..))` with one placeholder per value, in the backend's
/// placeholder syntax, and the values in bind order. Both SQLite (3.33+) and Postgres accept
/// it in front of `UPDATE .. FROM v`, which joins each row to its target by key: a hash or
/// index lookup per row, where a `CASE` with an arm per row costs rows x arms.
fn values_cte(
    backend: DbBackend,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<Value>>,
) -> (String, Vec<Value>) {
    let mut sql = format!("WITH v({}) AS (VALUES ", columns.join(", "));
    let mut values = Vec::new();
    for (i, row) in rows.enumerate() {
        debug_assert_eq!(row.len(), columns.len());
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, value) in row.into_iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            values.push(value);
            match backend {
                DbBackend::Postgres => {
                    use std::fmt::Write as _;
                    let _ = write!(sql, "${}", values.len());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql.push_str(") ");
    (sql, values)
}

/// Runs `WITH v(columns) AS (VALUES ..) <update>` over `items`, one statement per chunk, and
/// returns how many rows changed.
async fn update_from_values<T>(
    db: &DatabaseConnection,
    items: &[T],
    columns: &[&str],
    row: impl Fn(&T) -> Vec<Value>,
    update: &str,
) -> Result<u64, StoreError> {
    let backend = db.get_database_backend();
    let mut changed = 0;
    for chunk in items.chunks(UPDATE_CHUNK) {
        let (mut sql, values) = values_cte(backend, columns, chunk.iter().map(&row));
        sql.push_str(update);
        let res = db
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        changed += res.rows_affected();
    }
    Ok(changed)
}

/// Writes outcomes, one statement per chunk: each row by its run id (the claim's fencing
/// token) and only while it is still `running`. Returns how many rows changed; fewer than
/// given means some claims were taken over meanwhile, and their late outcome changed nothing.
pub async fn finish_runs(db: &DatabaseConnection, runs: &[FinishedRun]) -> Result<u64, StoreError> {
    update_from_values(
        db,
        runs,
        &[
            "run_id",
            "status",
            "finished_at",
            "duration_ms",
            "error",
            "output",
        ],
        |r| {
            vec![
                r.run_id.as_str().into(),
                r.status.as_str().into(),
                r.finished_at.into(),
                r.duration_ms.into(),
                r.error.clone().into(),
                r.output.clone().into(),
            ]
        },
        "UPDATE task_run SET status = v.status, finished_at = v.finished_at, \
         duration_ms = v.duration_ms, error = v.error, output = v.output \
         FROM v WHERE task_run.run_id = v.run_id AND task_run.status = 'running'",
    )
    .await
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
    pub task_name: std::sync::Arc<str>,
    /// Fire time of the last fire processed.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Its status.
    pub last_status: Option<RunStatus>,
    /// The next fire, when it changed (`Some(None)`: there is none).
    pub next_run_at: Option<Option<DateTime<Utc>>>,
}

/// Writes task status fields, one statement per chunk; they are not configuration, so
/// `version` does not move. A field a state leaves out keeps its stored value.
pub async fn update_task_states(
    db: &DatabaseConnection,
    states: &[TaskState],
) -> Result<(), StoreError> {
    let states: Vec<&TaskState> = states
        .iter()
        .filter(|s| s.next_run_at.is_some() || s.last_run_at.is_some() || s.last_status.is_some())
        .collect();
    update_from_values(
        db,
        &states,
        &[
            "name",
            "set_next",
            "next_run_at",
            "last_run_at",
            "last_status",
        ],
        |s| {
            vec![
                s.task_name.as_ref().into(),
                s.next_run_at.is_some().into(),
                s.next_run_at.flatten().into(),
                s.last_run_at.into(),
                s.last_status.map(|st| st.as_str()).into(),
            ]
        },
        "UPDATE scheduled_task SET \
         next_run_at = CASE WHEN v.set_next THEN v.next_run_at ELSE scheduled_task.next_run_at END, \
         last_run_at = COALESCE(v.last_run_at, scheduled_task.last_run_at), \
         last_status = COALESCE(v.last_status, scheduled_task.last_status) \
         FROM v WHERE scheduled_task.name = v.name",
    )
    .await?;
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

/// A run that lost its node: `running` on a node declared dead, or `interrupted` by a
/// shutdown, of a task that may be recovered.
#[derive(Debug, Clone, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct OrphanRun {
    /// Row id.
    pub id: i64,
    /// Task.
    pub task_name: String,
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

/// Runs that need a decision: `running` on dead or stopped nodes (nobody is behind them), and
/// first attempts `interrupted` by a shutdown whose task has `recover`.
pub async fn orphan_runs(db: &DatabaseConnection) -> Result<Vec<OrphanRun>, StoreError> {
    let sql = "SELECT r.id, r.task_name, r.fire_ts_ms, r.attempt, r.node_id, r.status, \
               COALESCE(t.recover, FALSE) AS recover \
               FROM task_run r \
               LEFT JOIN scheduled_task t ON t.name = r.task_name \
               LEFT JOIN scheduler_node n ON n.node_id = r.node_id \
               WHERE (r.status = 'running' AND n.state IN ('dead', 'stopped')) \
                  OR (r.status = 'interrupted' AND r.attempt = 1 AND t.recover = TRUE)";
    Ok(
        OrphanRun::find_by_statement(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .all(db)
        .await?,
    )
}

/// Records a dead node's run as `abandoned`, if it is still that attempt's and running.
pub async fn abandon_run(
    db: &DatabaseConnection,
    run: &OrphanRun,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = TaskRun::update_many()
        .col_expr(
            task_run::Column::Status,
            Expr::value(RunStatus::Abandoned.as_str()),
        )
        .col_expr(task_run::Column::FinishedAt, Expr::value(now))
        .col_expr(
            task_run::Column::Error,
            Expr::value(format!("node {} died while this ran", run.node_id)),
        )
        .filter(task_run::Column::Id.eq(run.id))
        .filter(task_run::Column::Attempt.eq(run.attempt))
        .filter(task_run::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
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
) -> Result<bool, StoreError> {
    let res = TaskRun::update_many()
        .col_expr(
            task_run::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .col_expr(task_run::Column::Attempt, Expr::value(run.attempt + 1))
        .col_expr(task_run::Column::NodeId, Expr::value(node_id))
        .col_expr(task_run::Column::RunId, Expr::value(run_id))
        .col_expr(task_run::Column::StartedAt, Expr::value(now))
        .col_expr(
            task_run::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            task_run::Column::DurationMs,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            task_run::Column::Error,
            Expr::value(format!(
                "attempt {} on node {} was {}",
                run.attempt, run.node_id, run.status
            )),
        )
        .filter(task_run::Column::Id.eq(run.id))
        .filter(task_run::Column::Attempt.eq(run.attempt))
        .filter(task_run::Column::Status.eq(run.status.as_str()))
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
) -> Result<u64, StoreError> {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::Query;
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
        let column = Expr::col(task_run::Column::TaskName);
        let which = if in_recoverable {
            column.in_subquery(recoverable())
        } else {
            column.not_in_subquery(recoverable())
        };
        settled += TaskRun::update_many()
            .col_expr(task_run::Column::Status, Expr::value(status.as_str()))
            .col_expr(task_run::Column::FinishedAt, Expr::value(now))
            .col_expr(
                task_run::Column::Error,
                Expr::value(format!("node {node_id} restarted while this ran")),
            )
            .filter(task_run::Column::NodeId.eq(node_id))
            .filter(task_run::Column::Status.eq(RunStatus::Running.as_str()))
            .filter(which)
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(settled)
}
