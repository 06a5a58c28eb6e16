//! Shared trigger confs: list, read (with the tasks that use each), add, change, remove.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, schemas};

/// The names of the tasks that use each conf, read once for however many confs are shown.
async fn users_by_conf(
    db: &sea_orm::DatabaseConnection,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
    let mut users: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for task in store::load_tasks(db).await? {
        if let Some(conf) = task.conf_name {
            users.entry(conf).or_default().push(task.row.name);
        }
    }
    Ok(users)
}

/// A conf with the names of the tasks that use it.
fn conf_with_users(
    conf: &entity::trigger_conf::Model,
    users: &std::collections::BTreeMap<String, Vec<String>>,
) -> serde_json::Value {
    let mut json = store::conf_json(conf);
    json["used_by"] = serde_json::json!(users.get(&conf.name).cloned().unwrap_or_default());
    json
}

async fn find(
    db: &sea_orm::DatabaseConnection,
    name: &str,
) -> Result<entity::trigger_conf::Model, ApiError> {
    store::list_trigger_confs(db)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            store::StoreError::NotFound {
                what: "trigger conf",
                name: name.to_owned(),
            }
            .into()
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/trigger-confs",
    tag = "cronmesh",
    responses((status = 200, description = "every conf with the tasks using it", body = schemas::ConfList), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn list(
    caller: Caller,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let users = users_by_conf(&state.db).await?;
    let items: Vec<serde_json::Value> = store::list_trigger_confs(&state.db)
        .await?
        .iter()
        .map(|conf| conf_with_users(conf, &users))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "cluster": super::cluster_json(&state.db).await?,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/trigger-confs/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "trigger conf name")),
    responses((status = 200, description = "the conf with the tasks using it", body = schemas::Conf), (status = 404, description = "no such name", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn get(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let conf = find(&state.db, &name).await?;
    Ok(HttpResponse::Ok().json(conf_with_users(&conf, &users_by_conf(&state.db).await?)))
}

/// The body of `POST /api/v1/trigger-confs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewConf {
    name: String,
    #[schema(value_type = Object)]
    trigger: serde_json::Value,
    #[serde(default)]
    description: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/trigger-confs",
    tag = "cronmesh",
    request_body = NewConf,
    responses((status = 201, description = "the new conf", body = schemas::Conf), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 409, description = "a clash with what is stored", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn create(
    caller: Caller,
    state: web::Data<ApiState>,
    body: web::Json<NewConf>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let body = body.into_inner();
    let conf = store::add_trigger_conf(
        &state.db,
        &body.name,
        &body.trigger.to_string(),
        &body.description,
        &caller.who(),
    )
    .await?;
    Ok(HttpResponse::Created().json(conf_with_users(&conf, &users_by_conf(&state.db).await?)))
}

/// The body of `PUT /api/v1/trigger-confs/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfTrigger {
    #[schema(value_type = Object)]
    trigger: serde_json::Value,
}

#[utoipa::path(
    put,
    path = "/api/v1/trigger-confs/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "trigger conf name")),
    request_body = ConfTrigger,
    responses((status = 200, description = "the conf as changed", body = schemas::Conf), (status = 400, description = "a bad value, named in the error", body = ErrorBody), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 413, description = "the body is over 64 KiB", body = ErrorBody), (status = 415, description = "the body is not JSON", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn replace(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: web::Json<ConfTrigger>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    store::set_trigger_conf(&state.db, &name, &body.trigger.to_string(), &caller.who()).await?;
    let conf = find(&state.db, &name).await?;
    Ok(HttpResponse::Ok().json(conf_with_users(&conf, &users_by_conf(&state.db).await?)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/trigger-confs/{name}",
    tag = "cronmesh",
    params(("name" = String, Path, description = "trigger conf name")),
    responses((status = 204, description = "removed"), (status = 403, description = "the token's role may not do this", body = ErrorBody), (status = 404, description = "no such name", body = ErrorBody), (status = 409, description = "a clash with what is stored", body = ErrorBody), (status = 401, description = "no token, or an unknown one", body = ErrorBody), (status = 503, description = "the database is unavailable", body = ErrorBody)),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    caller: Caller,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    store::remove_trigger_conf(&state.db, &name, &caller.who()).await?;
    Ok(HttpResponse::NoContent().finish())
}
