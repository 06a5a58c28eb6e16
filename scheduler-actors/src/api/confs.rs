//! Shared trigger confs: list, read (with the tasks that use each), add, change, remove.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::{Caller, Role};
use super::error::{ApiError, ErrorBody};
use super::{ApiState, schemas};

/// A conf with the names of the tasks that use it.
async fn conf_with_users(
    db: &sea_orm::DatabaseConnection,
    conf: &entity::trigger_conf::Model,
) -> Result<serde_json::Value, ApiError> {
    let users: Vec<String> = store::load_tasks(db)
        .await?
        .into_iter()
        .filter(|t| t.conf_name.as_deref() == Some(conf.name.as_str()))
        .map(|t| t.row.name)
        .collect();
    let mut json = store::conf_json(conf);
    json["used_by"] = serde_json::json!(users);
    Ok(json)
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
    let mut items = Vec::new();
    for conf in store::list_trigger_confs(&state.db).await? {
        items.push(conf_with_users(&state.db, &conf).await?);
    }
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
    Ok(HttpResponse::Ok().json(conf_with_users(&state.db, &conf).await?))
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
    Ok(HttpResponse::Created().json(conf_with_users(&state.db, &conf).await?))
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
    Ok(HttpResponse::Ok().json(conf_with_users(&state.db, &conf).await?))
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
