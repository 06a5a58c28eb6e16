//! The operations API, `/api/v1`, on every node's admin server: tasks, runs now, the cluster
//! pause and the audit trail, behind bearer tokens with roles (`auth.rs`). Every change goes
//! through the same `store` functions as the CLI's, so it is validated and audited the same
//! way; errors are `{"error":{"code","message","field"}}` (`error.rs`).

mod auth;
mod confs;
mod error;
mod reads;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use self::auth::Caller;
pub(crate) use self::auth::authenticate;
pub use self::auth::{ApiToken, Role, new_token, token_sha256};
use self::error::ApiError;

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

/// Registers the routes under `/api/v1`.
pub(crate) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY)
            .error_handler(|e, _| error::json_error(e)),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY))
    .service(
        web::scope("/api/v1")
            .route("/tasks", web::get().to(list_tasks))
            .route("/tasks", web::post().to(create_task))
            .route("/tasks/{name}", web::get().to(get_task))
            .route("/tasks/{name}", web::patch().to(patch_task))
            .route("/tasks/{name}", web::delete().to(delete_task))
            .route("/tasks/{name}/run", web::post().to(run_task))
            .route("/trigger-confs", web::get().to(confs::list))
            .route("/trigger-confs", web::post().to(confs::create))
            .route("/trigger-confs/{name}", web::get().to(confs::get))
            .route("/trigger-confs/{name}", web::put().to(confs::replace))
            .route("/trigger-confs/{name}", web::delete().to(confs::remove))
            .route("/runs", web::get().to(reads::list_runs))
            .route("/runs/{run_id}", web::get().to(reads::get_run))
            .route("/nodes", web::get().to(reads::nodes))
            .route("/actors", web::get().to(reads::actors))
            .route("/preview", web::post().to(reads::preview))
            .route("/pause", web::post().to(pause))
            .route("/resume", web::post().to(resume))
            .route("/audit", web::get().to(audit))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such API route",
                ))
            })),
    );
}

/// Filters and page of `GET /api/v1/tasks`.
#[derive(Debug, Deserialize)]
struct TaskList {
    module: Option<String>,
    owner: Option<String>,
    enabled: Option<bool>,
    last_status: Option<String>,
    q: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
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

async fn cluster_json(db: &DatabaseConnection) -> Result<serde_json::Value, ApiError> {
    Ok(serde_json::to_value(store::cluster_pause(db).await?).unwrap_or_default())
}

async fn list_tasks(
    caller: Caller,
    state: web::Data<ApiState>,
    query: web::Query<TaskList>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query.into_inner();
    let limit = page_limit(q.limit)?;
    let tasks = store::query_tasks(
        &state.db,
        &store::TaskQuery {
            module: q.module,
            owner: q.owner,
            enabled: q.enabled,
            last_status: q.last_status,
            text: q.q,
            after: q.cursor,
            limit,
        },
    )
    .await?;
    let next_cursor = (tasks.len() as u64 == limit)
        .then(|| tasks.last().map(|t| t.row.name.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": tasks.iter().map(store::StoredTask::to_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "cluster": cluster_json(&state.db).await?,
    })))
}

/// A task with its version as the `ETag`.
fn task_response(task: &store::StoredTask) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, format!("\"{}\"", task.row.version)))
        .json(task.to_json())
}

async fn get_task(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(task_response(&store::get_task(&state.db, &name).await?))
}

/// The version an `If-Match` header asks for, if any.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid("If-Match must be a task's ETag, such as \"42\"").on("If-Match")
        })
}

/// What `PATCH /api/v1/tasks/{name}` may change: any writable field (`enabled` alone needs
/// the operator role, anything else admin).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskPatch {
    enabled: Option<bool>,
    handler: Option<String>,
    handler_args: Option<serde_json::Value>,
    trigger: Option<serde_json::Value>,
    trigger_conf: Option<String>,
    owner: Option<String>,
    description: Option<String>,
    timeout_ms: Option<u64>,
    misfire: Option<String>,
    misfire_grace_ms: Option<u64>,
    overlap: Option<String>,
    recover: Option<bool>,
    lock_ttl_ms: Option<u64>,
}

impl TaskPatch {
    /// Whether it changes nothing but `enabled`.
    fn only_enabled(&self) -> bool {
        let TaskPatch {
            enabled: _,
            handler,
            handler_args,
            trigger,
            trigger_conf,
            owner,
            description,
            timeout_ms,
            misfire,
            misfire_grace_ms,
            overlap,
            recover,
            lock_ttl_ms,
        } = self;
        handler.is_none()
            && handler_args.is_none()
            && trigger.is_none()
            && trigger_conf.is_none()
            && owner.is_none()
            && description.is_none()
            && timeout_ms.is_none()
            && misfire.is_none()
            && misfire_grace_ms.is_none()
            && overlap.is_none()
            && recover.is_none()
            && lock_ttl_ms.is_none()
    }

    /// The policies as parsed values, or the error naming the field.
    fn policies(
        &self,
    ) -> Result<
        (
            Option<scheduler_core::MisfirePolicy>,
            Option<scheduler_core::OverlapPolicy>,
        ),
        ApiError,
    > {
        let misfire = self
            .misfire
            .as_deref()
            .map(|m| {
                m.parse().map_err(|e: scheduler_core::Error| {
                    ApiError::invalid(e.to_string()).on("misfire")
                })
            })
            .transpose()?;
        let overlap = self
            .overlap
            .as_deref()
            .map(|o| {
                o.parse().map_err(|e: scheduler_core::Error| {
                    ApiError::invalid(e.to_string()).on("overlap")
                })
            })
            .transpose()?;
        Ok((misfire, overlap))
    }

    /// Applies the fields given to a declaration.
    fn apply(
        self,
        decl: &mut scheduler_core::TaskDecl,
        misfire: Option<scheduler_core::MisfirePolicy>,
        overlap: Option<scheduler_core::OverlapPolicy>,
    ) {
        use scheduler_core::TriggerDecl;
        if let Some(v) = self.enabled {
            decl.enabled = v;
        }
        if let Some(v) = self.handler {
            decl.handler = v;
        }
        if let Some(v) = self.handler_args {
            decl.handler_args = (!v.is_null()).then_some(v);
        }
        if let Some(v) = self.trigger {
            decl.trigger = TriggerDecl::Json(v.to_string());
        }
        if let Some(v) = self.trigger_conf {
            decl.trigger = TriggerDecl::Conf(v);
        }
        if let Some(v) = self.owner {
            decl.owner = v;
        }
        if let Some(v) = self.description {
            decl.description = v;
        }
        if let Some(v) = self.timeout_ms {
            decl.timeout_secs = Some(v.div_ceil(1000));
        }
        if let Some(v) = misfire {
            decl.misfire = v;
        }
        if let Some(v) = self.misfire_grace_ms {
            decl.misfire_grace_secs = v / 1000;
        }
        if let Some(v) = overlap {
            decl.overlap = v;
        }
        if let Some(v) = self.recover {
            decl.recover = v;
        }
        if let Some(v) = self.lock_ttl_ms {
            decl.lock_ttl_ms = v;
        }
    }
}

async fn patch_task(
    caller: Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<TaskPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    let expected = if_match(&req)?;
    if patch.only_enabled() {
        caller.require(Role::Operator)?;
        let Some(enabled) = patch.enabled else {
            return Err(ApiError::invalid(
                "nothing to change: give a writable field",
            ));
        };
        store::set_enabled_if(&state.db, &name, enabled, expected, &caller.who()).await?;
        return Ok(task_response(&store::get_task(&state.db, &name).await?));
    }
    caller.require(Role::Admin)?;
    if patch.trigger.is_some() && patch.trigger_conf.is_some() {
        return Err(ApiError::invalid("give `trigger` or `trigger_conf`, not both").on("trigger"));
    }
    if patch.handler.as_deref() == Some("shell") && !state.shell_enabled {
        return Err(ApiError::forbidden(
            "the shell handler is turned off on this node (handlers.shell_enabled = false)"
                .to_owned(),
        ));
    }
    let (misfire, overlap) = patch.policies()?;
    let handlers = state.handlers.clone();
    let shell_enabled = state.shell_enabled;
    let check = |d: &scheduler_core::TaskDecl| {
        if d.handler == "shell" && !shell_enabled {
            return Err("the shell handler is turned off on this node".to_owned());
        }
        crate::builtin::validate_handler_args(&d.handler, d.handler_args.as_ref(), &|h| {
            handlers.contains_key(h) && crate::builtin::builtin(h).is_none()
        })
    };
    store::update_task_decl(
        &state.db,
        &name,
        expected,
        |decl| patch.apply(decl, misfire, overlap),
        &check,
        &caller.who(),
    )
    .await?;
    Ok(task_response(&store::get_task(&state.db, &name).await?))
}

async fn run_task(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let at = Utc::now();
    store::request_run_now(&state.db, &name, at, &caller.who()).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "task": name.as_str(),
        "fire_time": scheduler_core::rfc3339(at),
    })))
}

/// The body of a pause or resume.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

async fn set_pause(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
    paused: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Operator)?;
    let who = caller.who().because(body.into_inner().reason);
    let state = store::set_cluster_pause(&state.db, paused, &who)
        .await
        .map_err(|e| ApiError::from(e).on("reason"))?;
    Ok(HttpResponse::Ok().json(state))
}

async fn pause(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    set_pause(caller, state, body, true).await
}

async fn resume(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<Reason>,
) -> Result<HttpResponse, ApiError> {
    set_pause(caller, state, body, false).await
}

/// The body of `POST /api/v1/tasks`: a runtime task's writable fields; `trigger` is a trigger
/// JSON object, or `trigger_conf` names a shared one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTask {
    name: String,
    handler: String,
    #[serde(default)]
    handler_args: Option<serde_json::Value>,
    #[serde(default)]
    trigger: Option<serde_json::Value>,
    #[serde(default)]
    trigger_conf: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    misfire: Option<String>,
    #[serde(default)]
    misfire_grace_ms: Option<u64>,
    #[serde(default)]
    overlap: Option<String>,
    #[serde(default)]
    recover: bool,
    #[serde(default)]
    lock_ttl_ms: Option<u64>,
}

impl NewTask {
    /// The declaration, or what is wrong with the request (naming the field).
    fn decl(self) -> Result<scheduler_core::TaskDecl, ApiError> {
        use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl};
        let mut decl = match (self.trigger, self.trigger_conf) {
            (Some(trigger), None) => TaskDecl::trigger_json(&self.name, &trigger.to_string()),
            (None, Some(conf)) => TaskDecl::trigger_conf(&self.name, &conf),
            _ => {
                return Err(ApiError::invalid(
                    "give either `trigger` (a trigger JSON object) or `trigger_conf` (a name)",
                )
                .on("trigger"));
            }
        }
        .handler(&self.handler)
        .owner(&self.owner)
        .description(&self.description)
        .recover(self.recover)
        .origin("api");
        decl.handler_args = self.handler_args;
        decl.enabled = self.enabled.unwrap_or(true);
        decl.timeout_secs = self.timeout_ms.map(|ms| ms.div_ceil(1000));
        if let Some(m) = self.misfire {
            decl.misfire = m
                .parse::<MisfirePolicy>()
                .map_err(|e| ApiError::invalid(e.to_string()).on("misfire"))?;
        }
        if let Some(o) = self.overlap {
            decl.overlap = o
                .parse::<OverlapPolicy>()
                .map_err(|e| ApiError::invalid(e.to_string()).on("overlap"))?;
        }
        if let Some(g) = self.misfire_grace_ms {
            decl.misfire_grace_secs = g / 1000;
        }
        if let Some(ttl) = self.lock_ttl_ms {
            decl.lock_ttl_ms = ttl;
        }
        Ok(decl)
    }
}

async fn create_task(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<NewTask>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let decl = body.into_inner().decl()?;
    if decl.handler == "shell" && !state.shell_enabled {
        return Err(ApiError::forbidden(
            "the shell handler is turned off on this node (handlers.shell_enabled = false)"
                .to_owned(),
        ));
    }
    let handlers = state.handlers.clone();
    let check = |d: &scheduler_core::TaskDecl| {
        crate::builtin::validate_handler_args(&d.handler, d.handler_args.as_ref(), &|h| {
            handlers.contains_key(h) && crate::builtin::builtin(h).is_none()
        })
    };
    let row = store::insert_runtime_task(&state.db, &decl, &check, &caller.who()).await?;
    let task = store::get_task(&state.db, &row.name).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, format!("\"{}\"", task.row.version)))
        .json(task.to_json()))
}

async fn delete_task(
    caller: Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    store::remove_task_if(&state.db, &name, if_match(&req)?, &caller.who()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Filters and page of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
struct AuditList {
    target: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<u64>,
    cursor: Option<i64>,
}

async fn audit(
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
    let json = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    };
    let next_cursor = (events.len() as u64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let items: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "at": scheduler_core::rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "before": json(&e.before_json),
                "after": json(&e.after_json),
                "reason": e.reason,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next_cursor})))
}
