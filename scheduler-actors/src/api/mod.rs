//! The operations API, `/api/v1`, on every node's admin server: tasks, runs now, the cluster
//! pause and the audit trail, behind bearer tokens with roles (`auth.rs`). Every change goes
//! through the same `store` functions as the CLI's, so it is validated and audited the same
//! way; errors are `{"error":{"code","message","field"}}` (`error.rs`).

mod alerts;
mod auth;
mod confs;
mod error;
mod openapi;
mod reads;
mod schemas;
mod tasks;

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use sea_orm::DatabaseConnection;
use serde::Deserialize;

pub use self::auth::{ApiToken, Role, new_token, token_sha256};
pub(crate) use self::auth::{Caller, authenticate, caller_of, loopback_host, matching_token};
pub(crate) use self::error::ApiError;
use self::error::ErrorBody;
pub(crate) use self::reads::{Preview, preview_of, run_json, run_status};
pub(crate) use self::tasks::{NewTask, TaskPatch, add_task, change_task, remove_task, run_now};

/// The largest request body taken.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// What the API's handlers share.
pub(crate) struct ApiState {
    pub(crate) db: DatabaseConnection,
    pub(crate) tokens: Arc<[ApiToken]>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The handlers this node has, by name (a new task must name one).
    pub(crate) handlers: Arc<std::collections::HashMap<String, Arc<dyn crate::TaskHandler>>>,
    pub(crate) shell_enabled: bool,
    /// Whether `/metrics` is served without a token.
    pub(crate) metrics_public: bool,
}

impl ApiState {
    /// 403 when `handler` is `shell` on a node with `handlers.shell_enabled = false`.
    pub(crate) fn shell_allowed(&self, handler: &str) -> Result<(), ApiError> {
        if handler == "shell" && !self.shell_enabled {
            return Err(ApiError::forbidden(
                "the shell handler is turned off on this node (handlers.shell_enabled = false)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// What a new or changed task's handler and its arguments must pass on this node: a
    /// handler it has (shell only where it is on), arguments the handler takes.
    pub(crate) fn check_handler(&self, decl: &scheduler_core::TaskDecl) -> Result<(), String> {
        if decl.handler == "shell" && !self.shell_enabled {
            return Err("the shell handler is turned off on this node".to_owned());
        }
        crate::builtin::validate_handler_args(&decl.handler, decl.handler_args.as_ref(), &|h| {
            self.handlers.contains_key(h) && crate::builtin::builtin(h).is_none()
        })
    }
}

/// Every route under `/api/v1`, once: it registers them and lists them (`ROUTES`), so a test
/// can hold the OpenAPI document to exactly what is served.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// `(method, path)` of every route under `/api/v1`, as registered (read by the
        /// OpenAPI test).
        pub(crate) const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register(scope: actix_web::Scope) -> actix_web::Scope {
            scope$(.route($path, web::$method().to($handler)))*
        }
    };
}

api_routes! {
    get "/tasks" => tasks::list_tasks,
    post "/tasks" => tasks::create_task,
    get "/tasks/{name}" => tasks::get_task,
    patch "/tasks/{name}" => tasks::patch_task,
    delete "/tasks/{name}" => tasks::delete_task,
    post "/tasks/{name}/run" => tasks::run_task,
    post "/tasks/{name}/cutover" => tasks::cutover_task,
    get "/alerts" => alerts::deliveries,
    get "/trigger-confs" => confs::list,
    post "/trigger-confs" => confs::create,
    get "/trigger-confs/{name}" => confs::get,
    put "/trigger-confs/{name}" => confs::replace,
    delete "/trigger-confs/{name}" => confs::remove,
    get "/runs" => reads::list_runs,
    get "/runs/{run_id}" => reads::get_run,
    get "/nodes" => reads::nodes,
    get "/actors" => reads::actors,
    post "/preview" => reads::preview,
    post "/pause" => pause,
    post "/resume" => resume,
    get "/audit" => audit,
}

/// The cluster pause, shown in every list response.
pub(super) async fn cluster_json(db: &DatabaseConnection) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::to_value(store::cluster_pause(db).await?).unwrap_or_default())
}

/// A request no route takes: 405 with `Allow` when the path is served with other methods,
/// else 404.
async fn unrouted(req: actix_web::HttpRequest) -> HttpResponse {
    let path = req.path().strip_prefix("/api/v1").unwrap_or(req.path());
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let fits = |pattern: &str| {
        let parts: Vec<&str> = pattern.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p.starts_with('{') || p == s)
    };
    let allowed: Vec<String> = ROUTES
        .iter()
        .filter(|(_, pattern)| fits(pattern))
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect();
    let error = if allowed.is_empty() {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such API route",
        )
    } else {
        ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} takes {}", req.path(), allowed.join(", ")),
        )
    };
    let mut response = actix_web::ResponseError::error_response(&error);
    if !allowed.is_empty()
        && let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", "))
    {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// Registers the routes under `/api/v1`, and the OpenAPI document at
/// `/api/v1/openapi.json` (no token needed: it describes, it holds nothing).
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY)
            .error_handler(|e, _| error::json_error(e)),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY))
    .app_data(web::QueryConfig::default().error_handler(|e, _| error::query_error(e)))
    .service(
        register(web::scope("/api/v1"))
            .route("/openapi.json", web::get().to(openapi::document))
            .default_service(web::to(unrouted)),
    );
}

/// The most items a page holds.
const MAX_PAGE: u64 = 1000;

pub(crate) fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    match limit.unwrap_or(100) {
        0 => Err(ApiError::invalid("limit 0 returns nothing; give 1 to 1000").on("limit")),
        n if n > MAX_PAGE => {
            Err(ApiError::invalid(format!("limit {n} is over {MAX_PAGE}")).on("limit"))
        }
        n => Ok(n),
    }
}

/// The body of a pause or resume.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Reason {
    reason: String,
}

async fn set_pause(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    let state = change_pause(&state, &caller, paused, body.into_inner().reason).await?;
    Ok(HttpResponse::Ok().json(state))
}

/// Pauses or resumes the cluster (operator role; a reason is required).
pub(crate) async fn change_pause(
    state: &ApiState,
    caller: &Caller,
    paused: bool,
    reason: String,
) -> Result<store::ClusterPause, ApiError> {
    caller.require(Role::Operator)?;
    let who = caller.who().because(reason);
    store::set_cluster_pause(&state.db, paused, &who)
        .await
        .map_err(|e| ApiError::from(e).on("reason"))
}

#[utoipa::path(
    post,
    path = "/api/v1/pause",
    tag = "cronmesh",
    request_body = Reason,
    responses((status = 200, description = "the cluster state", body = schemas::Cluster), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn pause(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    set_pause(caller, state, body, true).await
}

#[utoipa::path(
    post,
    path = "/api/v1/resume",
    tag = "cronmesh",
    request_body = Reason,
    responses((status = 200, description = "the cluster state", body = schemas::Cluster), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn resume(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    set_pause(caller, state, body, false).await
}

/// Filters and page of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditList {
    target: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<u64>,
    cursor: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "cronmesh",
    params(AuditList),
    responses((status = 200, description = "a page of audit events, newest first", body = schemas::AuditPage), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn audit(
    caller: Caller,
    state: web::Data<ApiState>,
    query: web::Query<AuditList>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let events = store::list_audit(
        &state.db,
        &store::AuditFilter {
            target: q.target,
            actor: q.actor,
            action: q.action,
            before_id: q.cursor,
            limit,
        },
    )
    .await?;
    let next_cursor = (events.len() as u64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let items: Vec<serde_json::Value> = events.iter().map(store::audit_json).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "next_cursor": next_cursor,
        "cluster": cluster_json(&state.db).await?,
    })))
}
