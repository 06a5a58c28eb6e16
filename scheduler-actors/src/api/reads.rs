//! Read-only routes: runs, nodes, actors, and the preview of a trigger.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use serde::Deserialize;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, page_limit, schemas};

/// Filters and page of `GET /api/v1/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RunList {
    task: Option<String>,
    status: Option<String>,
    /// Only runs that went wrong (failed, timed_out, panicked, lock_lost, abandoned,
    /// interrupted).
    failed_only: Option<bool>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

/// A run status by its stored name (the `status` filter of the API and the console).
pub(crate) fn run_status(text: &str) -> Result<RunStatus, ApiError> {
    <RunStatus as sea_orm::Iterable>::iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "status {} is not a run status",
                scheduler_core::quoted(text)
            ))
            .on("status")
        })
}

fn instant(field: &str, text: &str) -> Result<i64, ApiError> {
    instant_at(field, text).map(|t| t.timestamp_millis())
}

/// An RFC 3339 instant given in `field`, or the error naming the field and the value.
pub(super) fn instant_at(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::invalid(format!(
                "{field} {} is not an RFC 3339 instant such as 2026-03-07T12:00:00Z ({e})",
                scheduler_core::quoted(text)
            ))
            .on(field)
        })
}

/// A run as the API shows it.
pub(crate) fn run_json(r: &entity::task_run::Model) -> serde_json::Value {
    let tail = r.output.as_deref().map(|o| {
        let start = o.len().saturating_sub(1024);
        let start = (start..o.len())
            .find(|i| o.is_char_boundary(*i))
            .unwrap_or(0);
        o[start..].to_owned()
    });
    serde_json::json!({
        "run_id": r.run_id,
        "task": r.task_name,
        "fire_time": DateTime::<Utc>::from_timestamp_millis(r.fire_ts_ms).map(scheduler_core::rfc3339),
        "attempt": r.attempt,
        "status": r.status.as_str(),
        "node": r.node_id,
        "started_at": scheduler_core::rfc3339(r.started_at),
        "finished_at": r.finished_at.map(scheduler_core::rfc3339),
        "duration_ms": r.duration_ms,
        "error": r.error,
        "output_tail": tail,
        "fires": r.fires,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "cronmesh",
    params(RunList),
    responses((status = 200, description = "a page of runs, newest first", body = schemas::RunPage), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn list_runs(
    caller: Caller,
    state: web::Data<ApiState>,
    query: web::Query<RunList>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let status = q.status.as_deref().map(run_status).transpose()?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once(':')
                .and_then(|(f, i)| Some((f.parse::<i64>().ok()?, i.parse::<i64>().ok()?)))
                .ok_or_else(|| ApiError::invalid("cursor is not one this API gave").on("cursor"))
        })
        .transpose()?;
    let runs = store::list_runs(
        &state.db,
        &store::RunFilter {
            task: q.task,
            status,
            failed_only: q.failed_only.unwrap_or(false),
            limit,
            since_ms: q
                .since
                .as_deref()
                .map(|s| instant("since", s))
                .transpose()?,
            until_ms: q
                .until
                .as_deref()
                .map(|s| instant("until", s))
                .transpose()?,
            before,
        },
    )
    .await?;
    let next_cursor = (runs.len() as u64 == limit)
        .then(|| runs.last().map(|r| format!("{}:{}", r.fire_ts_ms, r.id)))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": runs.iter().map(run_json).collect::<Vec<_>>(),
        "cluster": super::cluster_json(&state.db).await?,
        "next_cursor": next_cursor,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/runs/{run_id}",
    tag = "cronmesh",
    params(("run_id" = String, Path, description = "run id")),
    responses((status = 200, description = "the run", body = schemas::Run), (status = 404, description = "no such name", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn get_run(
    caller: Caller,
    state: web::Data<ApiState>,
    run_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(run_json(&store::get_run(&state.db, &run_id).await?)))
}

#[utoipa::path(
    get,
    path = "/api/v1/nodes",
    tag = "cronmesh",
    responses((status = 200, description = "every node", body = schemas::NodeList), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn nodes(
    caller: Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let now = Utc::now();
    let items: Vec<serde_json::Value> = store::list_nodes(&state.db)
        .await?
        .iter()
        .map(|n| store::node_json(n, now))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "cluster": super::cluster_json(&state.db).await?,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/actors",
    tag = "cronmesh",
    responses((status = 200, description = "mailbox metrics of this node's actors", body = Object), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn actors(
    caller: Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(state.metrics.snapshot()))
}

/// The body of `POST /api/v1/preview`: a trigger JSON object, or an expression and a zone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Preview {
    #[schema(value_type = Option<Object>)]
    pub(crate) trigger: Option<serde_json::Value>,
    pub(crate) expr: Option<String>,
    pub(crate) timezone: Option<String>,
    pub(crate) count: Option<usize>,
}

#[utoipa::path(
    post,
    path = "/api/v1/preview",
    tag = "cronmesh",
    request_body = Preview,
    responses((status = 200, description = "the next fires, UTC and local, with DST notes", body = schemas::Preview), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn preview(
    caller: Caller,
    body: web::Json<Preview>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let (trigger, fires) = preview_of(&body.into_inner(), Utc::now())?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "trigger": serde_json::from_str::<serde_json::Value>(&trigger.to_json()).ok(),
        "fires": fires,
    })))
}

/// The trigger a preview asks about and its next fires after `now`, or the error naming the
/// bad field (the API's preview and the console's trigger editor).
pub(crate) fn preview_of(
    body: &Preview,
    now: chrono::DateTime<Utc>,
) -> Result<(scheduler_core::Trigger, Vec<scheduler_core::PreviewFire>), ApiError> {
    let count = body.count.unwrap_or(10);
    if !(1..=100).contains(&count) {
        return Err(
            ApiError::invalid(format!("count {count} is not between 1 and 100")).on("count"),
        );
    }
    let trigger = match (&body.trigger, &body.expr) {
        (Some(json), None) => scheduler_core::Trigger::from_json(&json.to_string())
            .map_err(|e| ApiError::invalid(e.to_string()).on("trigger"))?,
        (None, Some(expr)) => {
            scheduler_core::Trigger::cron(expr, body.timezone.as_deref().unwrap_or("UTC"))
                .map_err(|e| ApiError::invalid(e.to_string()).on("expr"))?
        }
        _ => {
            return Err(ApiError::invalid(
                "give either `trigger` (a trigger JSON object) or `expr` (with `timezone`)",
            ));
        }
    };
    let fires = scheduler_core::preview(&trigger, now, count);
    Ok((trigger, fires))
}
