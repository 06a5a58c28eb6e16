//! Creating and editing a task, and the trigger preview: as the trigger is typed, the next 10
//! fires appear in the task's zone and UTC with DST notes, or the error naming the bad field.
//! The form is turned into the API's own request body (`NewTask`, `TaskPatch`), so it is
//! checked and audited exactly as the API's `POST`/`PATCH` are.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{self, Nav, task_href};
use super::session::check_origin;
use super::tasks::{conf_triggers, fire_list};
use super::{ConsoleError, Page, Viewer, html, html_with, see_other};
use crate::api::{ApiError, ApiState, NewTask, Preview, Role, TaskPatch, preview_of};

/// The form's fields, as text (what the browser sends).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(super) struct TaskForm {
    csrf: String,
    version: Option<i64>,
    name: String,
    handler: String,
    handler_args: String,
    /// The handler args as the form showed them (secrets redacted): sent back unchanged, they
    /// are left as stored.
    args_shown: String,
    mode: String,
    expr: String,
    timezone: String,
    trigger_json: String,
    trigger_conf: String,
    /// The preview starts at this date (not saved; to check a schedule around a DST change).
    preview_from: String,
    owner: String,
    description: String,
    timeout_secs: String,
    misfire: String,
    fire_all_max: String,
    misfire_grace_secs: String,
    overlap: String,
    recover: Option<String>,
    enabled: Option<String>,
    action: String,
}

impl TaskForm {
    /// A task's current values, for the edit form.
    fn of(task: &store::StoredTask) -> Self {
        let r = &task.row;
        let shown = task.to_json()["handler_args"].clone();
        let shown = if shown.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        };
        let (mode, expr, timezone, trigger_json) = match (&task.conf_name, &r.trigger_json) {
            (Some(_), _) => ("conf", String::new(), "UTC".to_owned(), String::new()),
            (None, Some(json)) => {
                let value: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                let simple_cron = value["type"] == "cron"
                    && value.get("start_at").is_none_or(Value::is_null)
                    && value.get("end_at").is_none_or(Value::is_null);
                if simple_cron {
                    (
                        "cron",
                        value["expr"].as_str().unwrap_or_default().to_owned(),
                        value["timezone"].as_str().unwrap_or("UTC").to_owned(),
                        String::new(),
                    )
                } else {
                    ("json", String::new(), "UTC".to_owned(), json.clone())
                }
            }
            (None, None) => ("cron", String::new(), "UTC".to_owned(), String::new()),
        };
        let (misfire, fire_all_max) = match r.misfire.split_once(':') {
            Some((policy, max)) => (policy.to_owned(), max.to_owned()),
            None => (r.misfire.clone(), String::new()),
        };
        TaskForm {
            version: Some(r.version),
            name: r.name.clone(),
            handler: r.handler.clone(),
            handler_args: shown.clone(),
            args_shown: shown,
            mode: mode.to_owned(),
            expr,
            timezone,
            trigger_json,
            trigger_conf: task.conf_name.clone().unwrap_or_default(),
            owner: r.owner.clone(),
            description: r.description.clone(),
            timeout_secs: r
                .timeout_ms
                .map(|ms| (ms.max(0) as u64).div_ceil(1000).to_string())
                .unwrap_or_default(),
            misfire,
            fire_all_max,
            misfire_grace_secs: (r.misfire_grace_ms.max(0) / 1000).to_string(),
            overlap: r.overlap.clone(),
            recover: r.recover.then(|| "on".to_owned()),
            enabled: r.enabled.then(|| "on".to_owned()),
            ..TaskForm::default()
        }
    }

    /// The fields of a new task before anything is typed.
    fn blank() -> Self {
        TaskForm {
            handler: "shell".to_owned(),
            mode: "cron".to_owned(),
            timezone: "UTC".to_owned(),
            misfire: "fire_once".to_owned(),
            misfire_grace_secs: "60".to_owned(),
            overlap: "forbid".to_owned(),
            enabled: Some("on".to_owned()),
            ..TaskForm::default()
        }
    }

    /// The preview request of the trigger fields.
    fn preview_request(&self) -> PreviewQuery {
        PreviewQuery {
            mode: self.mode.clone(),
            expr: self.expr.clone(),
            timezone: self.timezone.clone(),
            trigger_json: self.trigger_json.clone(),
            trigger_conf: self.trigger_conf.clone(),
            preview_from: self.preview_from.clone(),
        }
    }

    /// The request body the API would take, with the fields this form sets. `editing` leaves
    /// out what cannot change (the name) and what was not touched (redacted handler args).
    fn body(&self, editing: bool) -> Result<Value, ApiError> {
        let mut body = serde_json::Map::new();
        match self.mode.as_str() {
            "cron" => {
                let zone = self.timezone.trim();
                body.insert(
                    "trigger".into(),
                    json!({"type": "cron", "expr": self.expr.trim(), "timezone": if zone.is_empty() { "UTC" } else { zone }}),
                );
            }
            "json" => {
                let value: Value = serde_json::from_str(&self.trigger_json).map_err(|e| {
                    ApiError::invalid(format!("the trigger JSON is not JSON: {e}"))
                        .on("trigger_json")
                })?;
                body.insert("trigger".into(), value);
            }
            "conf" => {
                body.insert("trigger_conf".into(), json!(self.trigger_conf.trim()));
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "trigger kind {} is not cron, json or conf",
                    scheduler_core::quoted(other)
                ))
                .on("mode"));
            }
        }
        if !editing {
            body.insert("name".into(), json!(self.name.trim()));
            body.insert("enabled".into(), json!(self.enabled.is_some()));
        }
        body.insert("handler".into(), json!(self.handler.trim()));
        let args = self.handler_args.trim();
        if !(editing && args == self.args_shown.trim()) {
            let value = if args.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(args).map_err(|e| {
                    ApiError::invalid(format!("the handler args are not JSON: {e}"))
                        .on("handler_args")
                })?
            };
            body.insert("handler_args".into(), value);
        }
        body.insert("owner".into(), json!(self.owner.trim()));
        body.insert("description".into(), json!(self.description.trim()));
        if let Some(ms) = seconds_ms(&self.timeout_secs, "timeout_secs")? {
            body.insert("timeout_ms".into(), json!(ms));
        }
        if let Some(ms) = seconds_ms(&self.misfire_grace_secs, "misfire_grace_secs")? {
            body.insert("misfire_grace_ms".into(), json!(ms));
        }
        let misfire = match (self.misfire.as_str(), self.fire_all_max.trim()) {
            ("fire_all", max) if !max.is_empty() => format!("fire_all:{max}"),
            (policy, _) => policy.to_owned(),
        };
        body.insert("misfire".into(), json!(misfire));
        body.insert("overlap".into(), json!(self.overlap));
        body.insert("recover".into(), json!(self.recover.is_some()));
        Ok(Value::Object(body))
    }
}

/// Whole seconds typed in a form field, as milliseconds (`None` when left empty).
fn seconds_ms(text: &str, field: &str) -> Result<Option<u64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{field} {} is not a whole number of seconds",
                scheduler_core::quoted(text)
            ))
            .on(field)
        })
}

/// The trigger fields the preview reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PreviewQuery {
    mode: String,
    expr: String,
    timezone: String,
    trigger_json: String,
    trigger_conf: String,
    /// `YYYY-MM-DD`: fires from this day (00:00 UTC) on; empty for from now.
    preview_from: String,
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
                        label for="timeout_secs" { "Timeout (seconds, empty for none)" }
                        input #timeout_secs type="number" min="1" name="timeout_secs" value=(form.timeout_secs);
                    }
                }
                label for="description" { "Description" }
                input #description type="text" name="description" value=(form.description);
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
    check_origin(&req)?;
    viewer.check_csrf(&form.csrf)?;
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
    check_origin(&req)?;
    viewer.check_csrf(&form.csrf)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_the_apis_request_body() {
        let form = TaskForm {
            name: "web.ping".to_owned(),
            expr: "30 2 * * *".to_owned(),
            timezone: "America/New_York".to_owned(),
            handler_args: r#"{"url":"http://127.0.0.1:9/"}"#.to_owned(),
            timeout_secs: "30".to_owned(),
            fire_all_max: "5".to_owned(),
            misfire: "fire_all".to_owned(),
            ..TaskForm::blank()
        };
        let body = form.body(false).expect("valid");
        assert_eq!(body["trigger"]["timezone"], "America/New_York");
        assert_eq!(body["timeout_ms"], 30_000);
        assert_eq!(body["misfire"], "fire_all:5");
        assert!(serde_json::from_value::<NewTask>(body).is_ok());

        // Redacted args sent back unchanged are left out of an edit.
        let edit = TaskForm {
            handler_args: "{\"token\":\"***\"}".to_owned(),
            args_shown: "{\"token\":\"***\"}".to_owned(),
            ..form.clone()
        };
        let patch = edit.body(true).expect("valid");
        assert!(patch.get("handler_args").is_none() && patch.get("name").is_none());
        assert!(serde_json::from_value::<TaskPatch>(patch).is_ok());

        let bad = TaskForm {
            timeout_secs: "ten".to_owned(),
            ..form
        };
        let err = bad.body(false).expect_err("refused");
        assert_eq!(err.field(), Some("timeout_secs"));
        assert!(err.to_string().contains("\"ten\""), "{err}");
    }
}
