//! The tasks table (`/`), one task (`/tasks/{name}`), and the actions on a task: run now,
//! enable/disable, delete.

use std::collections::HashMap;

use actix_web::{HttpRequest, web};
use chrono::Utc;
use chrono_tz::Tz;
use maud::{Markup, html};
use scheduler_core::{Shadow, Trigger};
use serde::Deserialize;

use super::fires::{fire_list, mode_in_words, shadow_pill, timeline};
use super::layout::{self, Nav, in_zone, marks, query_string, status, task_href, when};
use super::{Page, Viewer, given, html, see_other};
use crate::api::{ApiError, ApiState, Role, TaskPatch};

/// Rows per page of the tasks table.
const PAGE_ROWS: u64 = 50;

/// Filters, order and cursor of the tasks table, as the URL carries them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TasksQuery {
    module: Option<String>,
    owner: Option<String>,
    status: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    after: Option<String>,
    after_key: Option<String>,
}

/// The triggers of shared confs, by name.
pub(super) async fn conf_triggers(
    state: &ApiState,
) -> Result<HashMap<String, String>, super::ConsoleError> {
    Ok(store::trigger_confs(&state.db).await?.into_iter().collect())
}

/// A task's trigger: its own, or its conf's.
pub(super) fn trigger_of(
    task: &store::StoredTask,
    confs: &HashMap<String, String>,
) -> Option<Trigger> {
    let json = match &task.conf_name {
        Some(conf) => confs.get(conf)?,
        None => task.row.trigger_json.as_ref()?,
    };
    Trigger::from_json(json).ok()
}

/// The zone a trigger's times are read in (UTC for date and interval triggers).
pub(super) fn zone_of(trigger: Option<&Trigger>) -> Tz {
    match trigger {
        Some(Trigger::Cron { schedule, .. }) => schedule.zone(),
        _ => chrono_tz::UTC,
    }
}

/// The trigger as written: the expression, or the conf's name, or the JSON.
pub(super) fn written(task: &store::StoredTask, trigger: Option<&Trigger>) -> String {
    if let Some(conf) = &task.conf_name {
        return format!("conf {conf}");
    }
    match trigger {
        Some(Trigger::Cron { schedule, .. }) if schedule.expr().all_days() => {
            format!("{} (day_match all)", schedule.expr().as_str())
        }
        Some(Trigger::Cron { schedule, .. }) => schedule.expr().as_str().to_owned(),
        _ => task.row.trigger_json.clone().unwrap_or_default(),
    }
}

pub(super) async fn list(
    viewer: Viewer,
    state: web::Data<ApiState>,
    query: web::Query<TasksQuery>,
    req: HttpRequest,
) -> Page {
    let q = query.into_inner();
    let sort = match given(&q.sort).as_deref() {
        None | Some("name") => store::TaskSort::Name,
        Some("module") => store::TaskSort::Module,
        Some("owner") => store::TaskSort::Owner,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "sort {} is not name, module or owner",
                scheduler_core::quoted(other)
            ))
            .on("sort")
            .into());
        }
    };
    let descending = match given(&q.dir).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "dir {} is not asc or desc",
                scheduler_core::quoted(other)
            ))
            .on("dir")
            .into());
        }
    };
    if sort != store::TaskSort::Name && given(&q.after).is_some() && q.after_key.is_none() {
        return Err(ApiError::invalid(
            "after_key is missing: a page sorted by module or owner goes on from a name and its sort key",
        )
        .on("after_key")
        .into());
    }
    let started = std::time::Instant::now();
    let tasks = store::query_tasks(
        &state.db,
        &store::TaskQuery {
            module: given(&q.module),
            owner: given(&q.owner),
            enabled: None,
            last_status: given(&q.status),
            text: given(&q.q),
            after: given(&q.after),
            after_key: q.after_key.clone(),
            sort,
            descending,
            limit: PAGE_ROWS,
        },
    )
    .await?;
    let names: Vec<String> = tasks.iter().map(|t| t.row.name.clone()).collect();
    let recent = store::recent_statuses(&state.db, &names, 20).await?;
    let confs = conf_triggers(&state).await?;
    let cluster = store::cluster_pause(&state.db).await?;
    let now = Utc::now();
    let next_page = (tasks.len() as u64 == PAGE_ROWS)
        .then(|| tasks.last())
        .flatten()
        .map(|last| {
            let mut params = filter_params(&q);
            params.push(("after", last.row.name.clone()));
            if let Some(key) = sort.key_of(&last.row) {
                params.push(("after_key", key.to_owned()));
            }
            query_string(&params)
        });
    let first_page = q.after.is_some().then(|| query_string(&filter_params(&q)));
    let sort_link = |key: &str| {
        let mut params: Vec<(&str, String)> = filter_params(&q)
            .into_iter()
            .filter(|(k, _)| *k != "sort" && *k != "dir")
            .collect();
        let current = given(&q.sort).unwrap_or_else(|| "name".to_owned()) == key;
        params.push(("sort", key.to_owned()));
        if current && !descending {
            params.push(("dir", "desc".to_owned()));
        }
        query_string(&params)
    };
    let sort_mark = |key: &str| {
        if given(&q.sort).unwrap_or_else(|| "name".to_owned()) == key {
            if descending { " ↓" } else { " ↑" }
        } else {
            ""
        }
    };
    let body = html! {
        div.actions {
            h1 { "Tasks" }
            @if viewer.may(Role::Admin) {
                a.button href="/tasks/new" { "New task" }
            }
        }
        form.filters.card method="get" action="/" role="search" {
            div { label for="f-q" { "Search" } input #f-q type="search" name="q" value=[given(&q.q)] placeholder="name or description"; }
            div { label for="f-module" { "Module" } input #f-module type="text" name="module" value=[given(&q.module)]; }
            div { label for="f-owner" { "Owner" } input #f-owner type="text" name="owner" value=[given(&q.owner)]; }
            div {
                label for="f-status" { "Last status" }
                select #f-status name="status" {
                    option value="" { "any" }
                    @for s in STATUSES {
                        option value=(s) selected[given(&q.status).as_deref() == Some(s)] { (s) }
                    }
                }
            }
            @if let Some(sort) = given(&q.sort) { input type="hidden" name="sort" value=(sort); }
            @if let Some(dir) = given(&q.dir) { input type="hidden" name="dir" value=(dir); }
            div { button type="submit" { "Filter" } }
        }
        div.table-wrap {
            table #tasks {
                caption.muted { "Next runs in the task's zone and in yours (" (viewer.zone.name()) "). Marks: the last 20 runs, oldest first." }
                thead { tr {
                    th scope="col" { a href=(sort_link("name")) { "Name" (sort_mark("name")) } }
                    th.wide scope="col" { a href=(sort_link("module")) { "Module" (sort_mark("module")) } }
                    th.wide scope="col" { a href=(sort_link("owner")) { "Owner" (sort_mark("owner")) } }
                    th scope="col" { "Trigger" }
                    th scope="col" { "Next run" }
                    th scope="col" { "Last runs" }
                    th scope="col" { "Enabled" }
                } }
                tbody {
                    @for task in &tasks {
                        @let trigger = trigger_of(task, &confs);
                        @let zone = zone_of(trigger.as_ref());
                        @let next = trigger.as_ref().filter(|_| task.row.enabled).and_then(|t| t.next_fire_after(now));
                        tr {
                            td.name {
                                a href=(task_href(&task.row.name)) { (task.row.name) }
                                " " (shadow_pill(&task.row, viewer.zone))
                                @if !task.row.description.is_empty() { span.sub { (task.row.description) } }
                            }
                            td.wide { (task.row.module) }
                            td.wide { (task.row.owner) }
                            td {
                                code { (written(task, trigger.as_ref())) }
                                span.sub { (trigger.as_ref().map(scheduler_core::describe).unwrap_or_else(|| "unreadable trigger".to_owned())) }
                            }
                            td {
                                @match next {
                                    Some(t) => {
                                        (in_zone(t, zone))
                                        @if zone != viewer.zone { span.sub { (in_zone(t, viewer.zone)) } }
                                    }
                                    None => span.muted { @if task.row.enabled { "none" } @else { "disabled" } }
                                }
                            }
                            td {
                                @if let Some(s) = &task.row.last_status { (status(s)) " " }
                                (marks(recent.get(&task.row.name).map(Vec::as_slice).unwrap_or_default(), viewer.zone))
                            }
                            td { (enabled_control(&viewer, &task.row.name, task.row.enabled, &req)) }
                        }
                    }
                    @if tasks.is_empty() {
                        tr { td colspan="7" { "No task matches." } }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if let Some(first) = &first_page { a href=(format!("/{first}")) { "← First page" } }
            @if let Some(next) = &next_page { a #next-page href=(format!("/{next}")) { "Next page →" } }
        }
        p.muted { "Page read in " (started.elapsed().as_millis()) " ms." }
    };
    Ok(html(layout::page(
        "Tasks",
        Nav::Tasks,
        &viewer,
        &cluster,
        body,
    )))
}

const STATUSES: [&str; 11] = [
    "succeeded",
    "failed",
    "timed_out",
    "panicked",
    "lock_lost",
    "interrupted",
    "abandoned",
    "skipped_overlap",
    "misfired",
    "shadow",
    "running",
];

fn filter_params(q: &TasksQuery) -> Vec<(&'static str, String)> {
    [
        ("q", &q.q),
        ("module", &q.module),
        ("owner", &q.owner),
        ("status", &q.status),
        ("sort", &q.sort),
        ("dir", &q.dir),
    ]
    .into_iter()
    .filter_map(|(k, v)| given(v).map(|v| (k, v)))
    .collect()
}

/// The enabled toggle: a button for operators, a word for viewers.
fn enabled_control(viewer: &Viewer, name: &str, enabled: bool, req: &HttpRequest) -> Markup {
    let back = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    html! {
        @if viewer.may(Role::Operator) {
            form.inline method="post" action=(format!("{}/enabled", task_href(name))) {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                input type="hidden" name="back" value=(back);
                button.secondary type="submit" aria-label=(format!("{} {name}", if enabled { "Disable" } else { "Enable" })) {
                    @if enabled { "On · disable" } @else { "Off · enable" }
                }
            }
        } @else {
            @if enabled { span.pill { "on" } } @else { span.pill.off { "off" } }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ShowQuery {
    fragment: Option<String>,
}

pub(super) async fn show(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    query: web::Query<ShowQuery>,
    req: HttpRequest,
) -> Page {
    let task = store::get_task(&state.db, &name).await?;
    let runs = store::list_runs(
        &state.db,
        &store::RunFilter {
            task: Some(task.row.name.clone()),
            limit: 50,
            ..Default::default()
        },
    )
    .await?;
    let confs = conf_triggers(&state).await?;
    let trigger = trigger_of(&task, &confs);
    let zone = zone_of(trigger.as_ref());
    let cutover = Shadow::from_columns(task.row.shadow, task.row.cutover_at);
    let timeline = timeline(&runs, zone, &viewer, cutover);
    if query.fragment.as_deref() == Some("timeline") {
        return Ok(html(timeline));
    }
    let cluster = store::cluster_pause(&state.db).await?;
    let json = task.to_json();
    let fires = trigger
        .as_ref()
        .map(|t| scheduler_core::preview(t, Utc::now(), 10))
        .unwrap_or_default();
    let r = &task.row;
    let href = task_href(&r.name);
    let body = html! {
        p { a href="/" { "← Tasks" } }
        h1 { (r.name) " " @if r.enabled { span.pill { "enabled" } } @else { span.pill.off { "disabled" } } " " (shadow_pill(r, viewer.zone)) }
        div.actions {
            @if viewer.may(Role::Operator) {
                form.inline method="post" action=(format!("{href}/run")) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button #run-now type="submit" { "Run now" }
                }
                (enabled_control(&viewer, &r.name, r.enabled, &req))
            }
            @if viewer.may(Role::Admin) {
                a.button.secondary #edit href=(format!("{href}/edit")) { "Edit" }
                a.button.secondary #delete href=(format!("{href}/delete")) { "Delete…" }
            }
        }
        div.grid2 {
            section.card {
                h2 { "Fields" }
                dl.fields {
                    dt { "Module" } dd { (r.module) }
                    dt { "Owner" } dd { (r.owner) }
                    dt { "Description" } dd { (r.description) }
                    dt { "Trigger" } dd { code { (written(&task, trigger.as_ref())) } }
                    dt { "In words" } dd { (trigger.as_ref().map(scheduler_core::describe).unwrap_or_else(|| "unreadable trigger".to_owned())) }
                    dt { "Handler" } dd { code { (r.handler) } }
                    dt { "Handler args" } dd { code { (json["handler_args"]) } }
                    dt { "Timeout" } dd { (r.timeout_ms.map(layout::duration_ms).unwrap_or_else(|| "none".to_owned())) }
                    dt { "Misfire" } dd { (r.misfire) ", grace " (layout::duration_ms(r.misfire_grace_ms)) }
                    dt { "Overlap" } dd { (r.overlap) }
                    dt { "Recover" } dd { (r.recover) }
                    dt { "Lock TTL" } dd { (layout::duration_ms(r.lock_ttl_ms)) }
                    dt { "Mode" } dd #mode { (mode_in_words(r, viewer.zone)) }
                    dt { "Source" } dd { (r.source) @if r.schedule_overridden { " (schedule set by an operator)" } }
                    dt { "Version" } dd { (r.version) }
                    dt { "Last run" } dd { @if let Some(t) = r.last_run_at { (when(t, viewer.zone)) } @else { "never" } }
                }
            }
            section.card {
                h2 { "Next 10 fires" }
                p.muted { "In the task's zone (" (zone.name()) ") and UTC." }
                (fire_list(&fires, zone))
            }
        }
        section {
            h2 { "Recent fires" }
            p.muted { "Every fire, newest first, refreshed every few seconds. Times in the task's zone." }
            div #timeline data-refresh=(format!("{href}?fragment=timeline")) data-every="3000" { (timeline) }
        }
    };
    Ok(html(layout::page(
        &r.name,
        Nav::Tasks,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Deserialize)]
pub(super) struct ActionForm {
    #[serde(default)]
    csrf: String,
    enabled: Option<String>,
    back: Option<String>,
}

pub(super) async fn run(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    form: web::Form<ActionForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    crate::api::run_now(&state, &viewer.caller, &name).await?;
    Ok(see_other(&task_href(&name)))
}

pub(super) async fn set_enabled(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    form: web::Form<ActionForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    let enabled = match form.enabled.as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => {
            return Err(ApiError::invalid(format!(
                "enabled {} is not true or false",
                scheduler_core::quoted(other.unwrap_or(""))
            ))
            .on("enabled")
            .into());
        }
    };
    let patch: TaskPatch = serde_json::from_value(serde_json::json!({ "enabled": enabled }))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    crate::api::change_task(&state, &viewer.caller, &name, patch, None).await?;
    let back = match form.back.as_deref() {
        Some(back) => super::session::local_path(Some(back)),
        None => task_href(&name),
    };
    Ok(see_other(&back))
}

pub(super) async fn confirm_delete(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Page {
    viewer
        .caller
        .require(Role::Admin)
        .map_err(super::ConsoleError::from)?;
    let task = store::get_task(&state.db, &name).await?;
    let cluster = store::cluster_pause(&state.db).await?;
    let href = task_href(&task.row.name);
    let body = html! {
        h1 { "Delete " (task.row.name) "?" }
        p { "The task stops firing on every node and its row is removed. Its past runs stay in the run history. This cannot be undone." }
        form method="post" action=(format!("{href}/delete")) {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="version" value=(task.row.version);
            div.actions {
                button.danger #confirm-delete type="submit" { "Delete " (task.row.name) }
                a.button.secondary href=(href) { "Keep it" }
            }
        }
    };
    Ok(html(layout::page(
        "Delete task",
        Nav::Tasks,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    csrf: String,
    version: Option<i64>,
}

pub(super) async fn delete(
    viewer: Viewer,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    form: web::Form<DeleteForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    crate::api::remove_task(&state, &viewer.caller, &name, form.version).await?;
    Ok(see_other("/"))
}
