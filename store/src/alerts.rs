//! What alerts need from the database: the delivery record, the outcome before a success
//! (`recovered`), and the tasks that have gone silent (the dead-man check).

use chrono::{DateTime, Utc};
use entity::alert_delivery::{self, Column as D};
use entity::prelude::*;
use entity::scheduled_task;
use entity::task_run::{Column as R, RunStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::error::Result;

/// The statuses that count as a failure for `recovered`: a run that started and did not
/// succeed, for a reason of its own (not a shutdown's interrupt).
pub const FAILURE_STATUSES: [RunStatus; 5] = [
    RunStatus::Failed,
    RunStatus::TimedOut,
    RunStatus::Panicked,
    RunStatus::LockLost,
    RunStatus::Abandoned,
];

/// Writes one delivery record; returns it with its id.
pub async fn record_delivery(
    db: &DatabaseConnection,
    row: alert_delivery::ActiveModel,
) -> Result<alert_delivery::Model> {
    Ok(row.insert(db).await?)
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only about this task.
    pub task: Option<String>,
    /// Only to this route.
    pub route: Option<String>,
    /// At most this many.
    pub limit: u64,
    /// Only older than this id (the cursor of the previous page).
    pub before_id: Option<i64>,
}

/// Deliveries, newest first.
pub async fn list_deliveries(
    db: &DatabaseConnection,
    filter: &DeliveryFilter,
) -> Result<Vec<alert_delivery::Model>> {
    let mut q = AlertDelivery::find();
    if let Some(t) = &filter.task {
        q = q.filter(D::TaskName.eq(t));
    }
    if let Some(r) = &filter.route {
        q = q.filter(D::Route.eq(r));
    }
    if let Some(id) = filter.before_id {
        q = q.filter(D::Id.lt(id));
    }
    Ok(q.order_by_desc(D::Id)
        .limit(filter.limit.max(1))
        .all(db)
        .await?)
}

/// Whether the run of `task` before the fire at `fire_ts_ms` that succeeded or failed (see
/// [`FAILURE_STATUSES`]) failed: then a success at `fire_ts_ms` is a recovery. `None` while the
/// run just before is still `running` (its outcome is not known yet). One indexed read.
pub async fn failed_before(
    db: &DatabaseConnection,
    task: &str,
    fire_ts_ms: i64,
) -> Result<Option<bool>> {
    let mut counted: Vec<&str> = FAILURE_STATUSES.iter().map(|s| s.as_str()).collect();
    counted.push(RunStatus::Succeeded.as_str());
    counted.push(RunStatus::Running.as_str());
    let previous: Option<RunStatus> = TaskRun::find()
        .select_only()
        .column(R::Status)
        .filter(R::TaskName.eq(task))
        .filter(R::FireTsMs.lt(fire_ts_ms))
        .filter(R::Status.is_in(counted))
        .order_by_desc(R::FireTsMs)
        .into_tuple()
        .one(db)
        .await?;
    Ok(match previous {
        Some(RunStatus::Running) => None,
        other => Some(other.is_some_and(|s| FAILURE_STATUSES.contains(&s))),
    })
}

/// The record of `task`'s fire at `fire_ts_ms`, if there is one.
pub async fn run_at(
    db: &DatabaseConnection,
    task: &str,
    fire_ts_ms: i64,
) -> Result<Option<entity::task_run::Model>> {
    Ok(TaskRun::find()
        .filter(R::TaskName.eq(task))
        .filter(R::FireTsMs.eq(fire_ts_ms))
        .one(db)
        .await?)
}

/// A task that has had no success for longer than its `alert_if_no_success_for`.
#[derive(Debug, Clone, PartialEq)]
pub struct SilentTask {
    /// The task.
    pub task: scheduled_task::Model,
    /// When its last success ended, if it ever had one.
    pub last_success: Option<DateTime<Utc>>,
    /// Since when it is silent: its last success, or (never succeeded) when it was created.
    pub silent_since: DateTime<Utc>,
}

/// Every enabled task whose last success (or, never having succeeded, its creation) is longer
/// ago than its `alert_if_no_success_for` at `now`, and that has had no `silent` alert since
/// then: once per silence.
pub async fn silent_tasks(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Vec<SilentTask>> {
    let watched = ScheduledTask::find()
        .filter(scheduled_task::Column::AlertIfNoSuccessForMs.is_not_null())
        .filter(scheduled_task::Column::Enabled.eq(true))
        .order_by_asc(scheduled_task::Column::Name)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for task in watched {
        let Some(limit) = task.alert_if_no_success_for_ms else {
            continue;
        };
        // When the last success ended (a long run that succeeds after an alert starts a new
        // silence only from its end).
        let last: Option<(i64, Option<DateTime<Utc>>)> = TaskRun::find()
            .select_only()
            .column(R::FireTsMs)
            .column(R::FinishedAt)
            .filter(R::TaskName.eq(&task.name))
            .filter(R::Status.eq(RunStatus::Succeeded.as_str()))
            .order_by_desc(R::FireTsMs)
            .into_tuple()
            .one(db)
            .await?;
        let last_success =
            last.and_then(|(fire, end)| end.or_else(|| DateTime::from_timestamp_millis(fire)));
        let silent_since = last_success.unwrap_or(task.created_at);
        if (now - silent_since).num_milliseconds() < limit {
            continue;
        }
        // Alerted: a `silent` alert was delivered since (a failed delivery is tried again at
        // the next check, which the route's throttle paces).
        let alerted = AlertDelivery::find()
            .filter(D::TaskName.eq(&task.name))
            .filter(D::Event.eq("silent"))
            .filter(D::State.eq("sent"))
            .filter(D::CreatedAt.gte(silent_since))
            .one(db)
            .await?
            .is_some();
        if !alerted {
            out.push(SilentTask {
                task,
                last_success,
                silent_since,
            });
        }
    }
    Ok(out)
}

/// When the last alert of `route` about `task` was sent (for the throttle across nodes).
pub async fn last_sent_at(
    db: &DatabaseConnection,
    route: &str,
    task: &str,
) -> Result<Option<DateTime<Utc>>> {
    Ok(AlertDelivery::find()
        .select_only()
        .column(D::CreatedAt)
        .filter(D::TaskName.eq(task))
        .filter(D::Route.eq(route))
        .filter(D::State.eq("sent"))
        .order_by_desc(D::Id)
        .into_tuple()
        .one(db)
        .await?)
}

/// Every task that names alert routes of its own, with the names.
pub async fn tasks_naming_alert_routes(
    db: &DatabaseConnection,
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let rows: Vec<(String, Option<String>)> = ScheduledTask::find()
        .select_only()
        .column(scheduled_task::Column::Name)
        .column(scheduled_task::Column::AlertRoutes)
        .filter(scheduled_task::Column::AlertRoutes.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, routes)| {
            let routes: Vec<String> = serde_json::from_str(routes.as_deref()?).ok()?;
            Some((name, routes))
        })
        .collect())
}

/// A delivery as the CLI and the API show it.
pub fn delivery_json(d: &alert_delivery::Model) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "route": d.route,
        "event": d.event,
        "task": d.task_name,
        "run_id": d.run_id,
        "fire_time": d.fire_ts_ms.and_then(DateTime::from_timestamp_millis).map(scheduler_core::rfc3339),
        "node": d.node_id,
        "state": d.state,
        "attempts": d.attempts,
        "http_status": d.http_status,
        "error": d.error,
        "suppressed": d.suppressed,
        "created_at": scheduler_core::rfc3339(d.created_at),
        "finished_at": d.finished_at.map(scheduler_core::rfc3339),
    })
}
