//! Alert routes: the deliveries recorded (`GET /api/v1/alerts`). The payload a `json` route
//! sends is in the document too, as the `JsonPayload` schema.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, cluster_json, page_limit, schemas};

/// Filters and page of `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AlertList {
    /// Only about this task.
    task: Option<String>,
    /// Only to this route.
    route: Option<String>,
    limit: Option<u64>,
    cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "cronmesh",
    params(AlertList),
    responses((status = 200, description = "a page of alert deliveries, newest first", body = schemas::DeliveryPage), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn deliveries(
    caller: Caller,
    state: web::Data<ApiState>,
    query: web::Query<AlertList>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let rows = store::list_deliveries(
        &state.db,
        &store::DeliveryFilter {
            task: q.task,
            route: q.route,
            limit,
            before_id: q.cursor,
        },
    )
    .await?;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    let items: Vec<serde_json::Value> = rows.iter().map(store::delivery_json).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "next_cursor": next_cursor,
        "cluster": cluster_json(&state.db).await?,
    })))
}
