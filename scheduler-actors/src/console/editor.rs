//! Creating and editing a task, and the trigger preview: as the trigger is typed, the next 10
//! fires appear in the task's zone and UTC with DST notes, or the error naming the bad field.
//! The form is turned into the API's own request body (`NewTask`, `TaskPatch`), so it is
//! checked and audited exactly as the API's `POST`/`PATCH` are.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::fires::fire_list;
use super::form::TaskForm;
use super::layout::{self, Nav, task_href};
use super::tasks::conf_triggers;
use super::{ConsoleError, Page, Viewer, html, html_with, see_other};
use crate::api::{ApiError, ApiState, NewTask, Preview, Role, TaskPatch, preview_of};

/// The trigger fields the preview reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PreviewQuery {
    pub(super) mode: String,
    pub(super) expr: String,
    pub(super) timezone: String,
    pub(super) trigger_json: String,
    pub(super) trigger_conf: String,
    /// `YYYY-MM-DD`: fires from this day (00:00 UTC) on; empty for from now.
    pub(super) preview_from: String,
}

/// The instant a preview starts at: the day asked for, or now.
fn preview_start(from: &str) -> Result<chrono::DateTime<Utc>, ApiError> {
    let from = from.trim();
    if from.is_empty() {
        return Ok(Utc::now());
    }
    chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "preview_from {} is not a date such as 2027-03-14",
                scheduler_core::quoted(from)
            ))
            .on("preview_from")
        })
}

/// The preview of the trigger fields: the trigger in words and its next 10 fires, or the
/// error naming the field.
async fn preview_markup(state: &ApiState, q: &PreviewQuery) -> Result<Markup, ConsoleError> {
    let request = match q.mode.as_str() {
        "json" => match serde_json::from_str::<Value>(&q.trigger_json) {
            Ok(trigger) => Ok(Preview {
                trigger: Some(trigger),
                expr: None,
                timezone: None,
                count: Some(10),
            }),
            Err(e) => Err(
                ApiError::invalid(format!("the trigger JSON is not JSON: {e}")).on("trigger_json"),
            ),
        },
        "conf" => match conf_triggers(state).await?.get(q.trigger_conf.trim()) {
            Some(json) => Ok(Preview {
                trigger: serde_json::from_str(json).ok(),
                expr: None,
                timezone: None,
                count: Some(10),
            }),
            None => Err(ApiError::invalid(format!(
                "no trigger conf named {}",
                scheduler_core::quoted(q.trigger_conf.trim())
            ))
            .on("trigger_conf")),
        },
        _ if q.expr.trim().is_empty() => {
            return Ok(html! { p.muted { "Type an expression to see its next fires." } });
        }
        _ => Ok(Preview {
            trigger: None,
            expr: Some(q.expr.trim().to_owned()),
            timezone: Some(if q.timezone.trim().is_empty() {
                "UTC".to_owned()
            } else {
                q.timezone.trim().to_owned()
            }),
            count: Some(10),
        }),
    };
    let start = preview_start(&q.preview_from);
    let outcome = start.and_then(|start| request.and_then(|r| preview_of(&r, start)));
    Ok(match outcome {
        Ok((trigger, fires)) => html! {
            p { strong { (scheduler_core::describe(&trigger)) } }
            p.muted {
                "Next 10 fires"
                @if !q.preview_from.trim().is_empty() { " from " (q.preview_from.trim()) " 00:00 UTC" }
                " in the trigger's zone, then UTC:"
            }
            (fire_list(&fires, super::tasks::zone_of(Some(&trigger))))
        },
        Err(e) => html! {
            p.error role="alert" {
                @if let Some(field) = e.field() { "In " code { (field) } ": " }
                (e.to_string())
            }
        },
    })
}

pub(super) async fn preview(
    _viewer: Viewer,
    state: web::Data<ApiState>,
    query: web::Query<PreviewQuery>,
) -> Page {
    Ok(html(preview_markup(&state, &query).await?))
}

/// The form, with the preview of its trigger and, after a refused save, the error.
async fn form_page(
    viewer: &Viewer,
    state: &ApiState,
    form: &TaskForm,
    editing: Option<&str>,
    problem: Option<&ApiError>,
) -> Result<Markup, ConsoleError> {
    let cluster = store::cluster_pause(&state.db).await?;
    let mut handlers: Vec<&String> = state.handlers.keys().collect();
    // A task's handler may live on other nodes only: it stays a choice.
    if !form.handler.is_empty() && !state.handlers.contains_key(&form.handler) {
        handlers.push(&form.handler);
    }
    handlers.sort();
    let confs = conf_triggers(state).await?;
    let mut conf_names: Vec<&String> = confs.keys().collect();
    conf_names.sort();
    let preview = preview_markup(state, &form.preview_request()).await?;
    let action = match editing {
        Some(name) => format!("{}/edit", task_href(name)),
        None => "/tasks/new".to_owned(),
    };
    let title = match editing {
        Some(name) => format!("Edit {name}"),
        None => "New task".to_owned(),
    };
    let body = html! {
        h1 { (title) }
        @if let Some(problem) = problem {
            p.error role="alert" #form-error {
                @if let Some(field) = problem.field() { "In " code { (field) } ": " }
                (problem.to_string())
            }
        }
        form method="post" action=(action) data-preview {
            input type="hidden" name="csrf" value=(viewer.csrf);
            @if let Some(version) = form.version { input type="hidden" name="version" value=(version); }
            input type="hidden" name="args_shown" value=(form.args_shown);
            @if editing.is_some() {
                input type="hidden" name="trigger_shown" value=(form.trigger_shown);
                input type="hidden" name="handler_shown" value=(form.handler_shown);
            }
            div.grid2 {
                div.card {
                    @if editing.is_none() {
                        label for="name" { "Name (module.task)" }
                        input #name type="text" name="name" value=(form.name) required placeholder="billing.invoice_run";
                    }
                    fieldset {
                        legend { "Trigger" }
                        div.radios role="radiogroup" aria-label="Trigger kind" {
                            label { input type="radio" name="mode" value="cron" checked[form.mode == "cron"]; "Cron expression" }
                            label { input type="radio" name="mode" value="json" checked[form.mode == "json"]; "Trigger JSON" }
                            label { input type="radio" name="mode" value="conf" checked[form.mode == "conf"]; "Shared trigger conf" }
                        }
                        div data-mode="cron" {
                            label for="expr" { "Expression" }
                            input #expr type="text" name="expr" value=(form.expr) placeholder="30 2 * * *" autocomplete="off" spellcheck="false";
                            label for="timezone" { "Time zone" }
                            input #timezone type="text" name="timezone" value=(form.timezone) list="zones" autocomplete="off" spellcheck="false";
                            datalist #zones { @for zone in chrono_tz::TZ_VARIANTS { option value=(zone.name()) {} } }
                        }
                        div data-mode="json" {
                            label for="trigger_json" { "Trigger JSON" }
                            textarea #trigger_json name="trigger_json" spellcheck="false" placeholder=r#"{"type":"interval","every_secs":90}"# { (form.trigger_json) }
                        }
                        div data-mode="conf" {
                            label for="trigger_conf" { "Trigger conf" }
                            select #trigger_conf name="trigger_conf" {
                                option value="" { "choose one" }
                                @for conf in &conf_names {
                                    option value=(conf) selected[form.trigger_conf == **conf] { (conf) }
                                }
                            }
                        }
                    }
                    label for="handler" { "Handler" }
                    select #handler name="handler" {
                        @for h in &handlers { option value=(h) selected[form.handler == **h] { (h) } }
                    }
                    label for="handler_args" { "Handler args (JSON)" }
                    textarea #handler_args name="handler_args" spellcheck="false" placeholder=r#"{"program":"/usr/local/bin/backup","args":["--all"]}"# { (form.handler_args) }
                    @if editing.is_some() && !form.args_shown.is_empty() {
                        p.hint { "Secrets are shown redacted; leave the text as it is to keep the stored values." }
                    }
                }
                div.card {
                    h2 { "Preview" }
                    div #preview aria-live="polite" { (preview) }
                    label for="preview_from" { "Preview from (a date, UTC; empty for now)" }
                    input #preview_from type="date" name="preview_from" value=(form.preview_from);
                    div.actions { button.secondary type="submit" name="action" value="preview" { "Preview" } }
                }
            }
            div.card {
                div.grid2 {
                    div {
                        label for="owner" { "Owner" }
                        input #owner type="text" name="owner" value=(form.owner);
                    }
                    div {
                        label for="timeout_secs" {
                            @if editing.is_some() { "Timeout (seconds; empty keeps the current)" } @else { "Timeout (seconds, empty for none)" }
                        }
                        input #timeout_secs type="number" min="1" name="timeout_secs" value=(form.timeout_secs);
                    }
                }
                label for="description" { "Description" }
                input #description type="text" name="description" value=(form.description);
                div.grid2 {
                    div {
                        label for="alert_routes" { "Alert routes of its own (names, comma-separated)" }
                        input #alert_routes type="text" name="alert_routes" value=(form.alert_routes);
                    }
                    div {
                        label for="alert_if_no_success_for_secs" { "Alert if no success for (seconds, at least 60; empty: never)" }
                        input #alert_if_no_success_for_secs type="number" min="60" name="alert_if_no_success_for_secs" value=(form.alert_if_no_success_for_secs);
                    }
                }
                div.grid2 {
                    div {
                        label for="misfire" { "Misfire policy" }
                        select #misfire name="misfire" {
                            @for (value, label) in [("skip", "skip: drop missed fires"), ("fire_once", "fire_once: run once for all missed"), ("fire_all", "fire_all: run each missed fire")] {
                                option value=(value) selected[form.misfire == value] { (label) }
                            }
                        }
                        label for="fire_all_max" { "fire_all: at most this many (empty: the default)" }
                        input #fire_all_max type="number" min="1" name="fire_all_max" value=(form.fire_all_max);
                        label for="misfire_grace_secs" { "Misfire grace (seconds)" }
                        input #misfire_grace_secs type="number" min="0" name="misfire_grace_secs" value=(form.misfire_grace_secs);
                    }
                    div {
                        label for="overlap" { "Overlap" }
                        select #overlap name="overlap" {
                            @for (value, label) in [("forbid", "forbid: skip a fire while the last runs"), ("allow", "allow: run side by side")] {
                                option value=(value) selected[form.overlap == value] { (label) }
                            }
                        }
                        label.check { input type="checkbox" name="recover" checked[form.recover.is_some()]; "Recover: run again a fire whose node died mid-run" }
                        @if editing.is_none() {
                            label.check { input type="checkbox" name="enabled" checked[form.enabled.is_some()]; "Enabled" }
                        }
                    }
                }
            }
            div.actions {
                button #save type="submit" name="action" value="save" { @if editing.is_some() { "Save changes" } @else { "Create task" } }
                a.button.secondary href=(editing.map(task_href).unwrap_or_else(|| "/".to_owned())) { "Cancel" }
            }
        }
    };
    Ok(layout::page(&title, Nav::Tasks, viewer, &cluster, body))
}

pub(super) async fn new_form(viewer: Viewer, state: web::Data<ApiState>) -> Page {
    viewer.caller.require(Role::Admin)?;
    Ok(html(
        form_page(&viewer, &state, &TaskForm::blank(), None, None).await?,
    ))
}

pub(super) async fn create(
    viewer: Viewer,
    state: web::Data<ApiState>,
    form: web::Form<TaskForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    viewer.caller.require(Role::Admin)?;
    if form.action == "preview" {
        return Ok(html(form_page(&viewer, &state, &form, None, None).await?));
    }
    let saved = async {
        let new: NewTask = serde_json::from_value(form.body(false)?)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        crate::api::add_task(&state, &viewer.caller, new).await
    }
    .await;
    match saved {
        Ok(task) => Ok(see_other(&task_href(&task.row.name))),
        Err(e) => refused(&viewer, &state, &form, None, e).await,
    }
}

/// The form again, with what was typed and why it was refused.
async fn refused(
    viewer: &Viewer,
    state: &ApiState,
    form: &TaskForm,
    editing: Option<&str>,
    error: ApiError,
) -> Page {
    let status = actix_web::ResponseError::status_code(&error);
    if status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND {
        return Err(error.into());
    }
    let page = form_page(viewer, state, form, editing, Some(&error)).await?;
    Ok(html_with(status, page))
}

pub(super) async fn edit_form(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Page {
    viewer.caller.require(Role::Admin)?;
    let task = store::get_task(&state.db, &name).await?;
    let form = TaskForm::of(&task);
    Ok(html(
        form_page(&viewer, &state, &form, Some(&task.row.name), None).await?,
    ))
}

pub(super) async fn update(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    form: web::Form<TaskForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    viewer.caller.require(Role::Admin)?;
    if form.action == "preview" {
        return Ok(html(
            form_page(&viewer, &state, &form, Some(&name), None).await?,
        ));
    }
    let saved = async {
        let patch: TaskPatch = serde_json::from_value(form.body(true)?)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        crate::api::change_task(&state, &viewer.caller, &name, patch, form.version).await
    }
    .await;
    match saved {
        Ok(task) => Ok(see_other(&task_href(&task.row.name))),
        Err(e) => refused(&viewer, &state, &form, Some(&name), e).await,
    }
}
