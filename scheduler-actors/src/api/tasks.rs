//! Task routes: list, read, create, change, delete, run now.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, cluster_json, page_limit, schemas};

/// Filters and page of `GET /api/v1/tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TaskList {
    module: Option<String>,
    owner: Option<String>,
    enabled: Option<bool>,
    last_status: Option<String>,
    q: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "cronmesh",
    params(TaskList),
    responses((status = 200, description = "a page of tasks", body = schemas::TaskPage), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn list_tasks(
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
            ..store::TaskQuery::default()
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

#[utoipa::path(
    get,
    path = "/api/v1/tasks/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "task name")),
    responses((status = 200, description = "the task; ETag is its version", body = schemas::Task), (status = 404, description = "no such name", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn get_task(
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskPatch {
    enabled: Option<bool>,
    handler: Option<String>,
    #[schema(value_type = Option<Object>)]
    handler_args: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
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
    /// `true` puts the task in shadow mode (fires recorded as `shadow`, the handler not run; a
    /// cut-over still to come stays, one that has passed is undone), `false` makes it run for
    /// real.
    shadow: Option<bool>,
    /// Alert routes the task names besides the configured matches (replaces the list).
    alert_routes: Option<Vec<String>>,
    /// The dead-man check: a `silent` alert after this many seconds without a success (60 s to
    /// a year); 0 turns it off.
    alert_if_no_success_for_secs: Option<u64>,
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
            shadow,
            alert_routes,
            alert_if_no_success_for_secs,
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
            && shadow.is_none()
            && alert_routes.is_none()
            && alert_if_no_success_for_secs.is_none()
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
        if let Some(routes) = self.alert_routes {
            decl.alert_routes = routes.iter().map(|r| r.trim().to_owned()).collect();
        }
        if let Some(secs) = self.alert_if_no_success_for_secs {
            decl.alert_if_no_success_for_secs = (secs > 0).then_some(secs);
        }
        match (self.shadow, decl.shadow) {
            (Some(false), _) => decl.shadow = scheduler_core::Shadow::Off,
            // A cut-over still to come stays; one that has passed (the task runs for real) is
            // undone, as `tasks shadow` does.
            (Some(true), scheduler_core::Shadow::Until(at)) if at > Utc::now() => {}
            (Some(true), _) => decl.shadow = scheduler_core::Shadow::On,
            (None, _) => {}
        }
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/tasks/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "task name"), ("If-Match" = Option<String>, Header, description = "the ETag last read; 412 if the task changed since")),
    request_body = TaskPatch,
    responses((status = 200, description = "the task as changed", body = schemas::Task), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 412, description = "If-Match no longer matches; nothing written", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn patch_task(
    caller: Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<TaskPatch>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let task = change_task(&state, &caller, &name, body.into_inner(), expected).await?;
    Ok(task_response(&task))
}

/// Changes a task as `patch` says (the API's PATCH and the console's forms): `enabled` alone
/// needs the operator role, anything else admin; `expected` is the version the caller last
/// read (412 when it moved).
pub(crate) async fn change_task(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    patch: TaskPatch,
    expected: Option<i64>,
) -> Result<store::StoredTask, ApiError> {
    if patch.only_enabled() {
        caller.require(Role::Operator)?;
        let Some(enabled) = patch.enabled else {
            return Err(ApiError::invalid(
                "nothing to change: give a writable field",
            ));
        };
        if enabled && !state.shell_enabled {
            state.shell_allowed(&store::get_task(&state.db, name).await?.row.handler)?;
        }
        store::set_enabled_if(&state.db, name, enabled, expected, &caller.who()).await?;
        return Ok(store::get_task(&state.db, name).await?);
    }
    caller.require(Role::Admin)?;
    if patch.trigger.is_some() && patch.trigger_conf.is_some() {
        return Err(ApiError::invalid("give `trigger` or `trigger_conf`, not both").on("trigger"));
    }
    if let Some(handler) = &patch.handler {
        state.shell_allowed(handler)?;
    }
    let (misfire, overlap) = patch.policies()?;
    let check = |d: &scheduler_core::TaskDecl| state.check_handler(d);
    store::update_task_decl(
        &state.db,
        name,
        expected,
        |decl| patch.apply(decl, misfire, overlap),
        &check,
        &caller.who(),
    )
    .await?;
    Ok(store::get_task(&state.db, name).await?)
}

#[utoipa::path(
    post,
    path = "/api/v1/tasks/{name}/run",
    tag = "cronmesh",
    params(("name" = String, Path, description = "task name")),
    responses((status = 202, description = "one run requested", body = schemas::RunRequested), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn run_task(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let at = run_now(&state, &caller, &name).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "task": name.as_str(),
        "fire_time": scheduler_core::rfc3339(at),
    })))
}

/// Asks for one run of a task now (operator role); the instant asked for.
pub(crate) async fn run_now(
    state: &ApiState,
    caller: &Caller,
    name: &str,
) -> Result<chrono::DateTime<Utc>, ApiError> {
    caller.require(Role::Operator)?;
    let at = Utc::now();
    store::request_run_now(&state.db, name, at, &caller.who()).await?;
    Ok(at)
}

/// The body of `POST /api/v1/tasks`: a runtime task's writable fields; `trigger` is a trigger
/// JSON object, or `trigger_conf` names a shared one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTask {
    name: String,
    handler: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    handler_args: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
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
    /// Start in shadow mode: fires are recorded as `shadow` and the handler does not run
    /// until the task is cut over.
    #[serde(default)]
    shadow: bool,
    /// Alert routes the task names besides the configured matches.
    #[serde(default)]
    alert_routes: Option<Vec<String>>,
    /// The dead-man check: a `silent` alert after this many seconds without a success.
    #[serde(default)]
    alert_if_no_success_for_secs: Option<u64>,
}

impl NewTask {
    /// The declaration, or what is wrong with the request (naming the field): the trigger and
    /// handler it must have, then every other field as a PATCH would set it.
    fn decl(self) -> Result<scheduler_core::TaskDecl, ApiError> {
        use scheduler_core::TaskDecl;
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
        .origin("api");
        let rest = TaskPatch {
            enabled: self.enabled,
            handler_args: self.handler_args,
            owner: Some(self.owner),
            description: Some(self.description),
            timeout_ms: self.timeout_ms,
            misfire: self.misfire,
            misfire_grace_ms: self.misfire_grace_ms,
            overlap: self.overlap,
            recover: Some(self.recover),
            lock_ttl_ms: self.lock_ttl_ms,
            shadow: Some(self.shadow),
            alert_routes: self.alert_routes,
            alert_if_no_success_for_secs: self.alert_if_no_success_for_secs,
            ..TaskPatch::default()
        };
        let (misfire, overlap) = rest.policies()?;
        rest.apply(&mut decl, misfire, overlap);
        Ok(decl)
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    tag = "cronmesh",
    request_body = NewTask,
    responses((status = 201, description = "the new task", body = schemas::Task), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 409, description = "a clash with what is stored", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn create_task(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<NewTask>,
) -> Result<HttpResponse, ApiError> {
    let task = add_task(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, format!("\"{}\"", task.row.version)))
        .json(task.to_json()))
}

/// Adds a runtime task (admin role): the API's POST and the console's form.
pub(crate) async fn add_task(
    state: &ApiState,
    caller: &Caller,
    new: NewTask,
) -> Result<store::StoredTask, ApiError> {
    caller.require(Role::Admin)?;
    let decl = new.decl()?;
    state.shell_allowed(&decl.handler)?;
    let check = |d: &scheduler_core::TaskDecl| state.check_handler(d);
    let row = store::insert_runtime_task(&state.db, &decl, &check, &caller.who()).await?;
    Ok(store::get_task(&state.db, &row.name).await?)
}

#[utoipa::path(
    delete,
    path = "/api/v1/tasks/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "task name"), ("If-Match" = Option<String>, Header, description = "the ETag last read; 412 if the task changed since")),
    responses((status = 204, description = "removed"), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 412, description = "If-Match no longer matches; nothing written", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn delete_task(
    caller: Caller,
    state: web::Data<ApiState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    remove_task(&state, &caller, &name, if_match(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a task (admin role); `expected` as for [`change_task`].
pub(crate) async fn remove_task(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    expected: Option<i64>,
) -> Result<(), ApiError> {
    caller.require(Role::Admin)?;
    store::remove_task_if(&state.db, name, expected, &caller.who()).await?;
    Ok(())
}

/// The body of `POST /api/v1/tasks/{name}/cutover`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cutover {
    /// RFC 3339 instant, at least 10 s ahead: the fire at this instant and every later one run
    /// for real; earlier fires stay `shadow`.
    at: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/tasks/{name}/cutover",
    tag = "cronmesh",
    params(("name" = String, Path, description = "task name")),
    request_body = Cutover,
    responses((status = 200, description = "the task, cut over", body = schemas::Task), (status = 400, description = "a bad value, named in the error, or the task is not in shadow mode", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn cutover_task(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: web::Json<Cutover>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let at = super::reads::instant_at("at", &body.at)?;
    store::cut_over(&state.db, std::slice::from_ref(&name), at, &caller.who()).await?;
    Ok(task_response(&store::get_task(&state.db, &name).await?))
}
