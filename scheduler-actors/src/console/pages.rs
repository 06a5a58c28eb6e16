//! The pages besides tasks: trigger confs and their tasks, runs (and one run with its output),
//! nodes and what runs where, this node's actors (live), the audit log, and the cluster pause.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav, in_zone, query_string, status, task_href, url_encode, when};
use super::tasks::conf_triggers;
use super::{ConsoleState, Page, Viewer, given, html, see_other};
use crate::api::{ApiError, ApiState, Role};

/// Rows per page of the runs and audit pages.
const PAGE_ROWS: u64 = 100;

pub(super) async fn confs(viewer: Viewer, state: web::Data<ApiState>) -> Page {
    let confs = store::list_trigger_confs(&state.db).await?;
    // Which tasks use each conf: one read of the tasks that use any.
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for task in store::load_tasks(&state.db).await? {
        if let Some(conf) = task.conf_name {
            users.entry(conf).or_default().push(task.row.name);
        }
    }
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Trigger confs" }
        p.muted { "Shared triggers: changing one reschedules every task that uses it (" code { "cronmesh triggers set" } ", or " code { "PUT /api/v1/trigger-confs/{name}" } ")." }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Trigger" } th scope="col" { "Used by" } } }
            tbody {
                @for conf in &confs {
                    @let trigger = scheduler_core::Trigger::from_json(&conf.trigger_json).ok();
                    tr {
                        td.name { (conf.name) @if !conf.description.is_empty() { span.sub { (conf.description) } } }
                        td { code { (conf.trigger_json) } span.sub { (trigger.as_ref().map(scheduler_core::describe).unwrap_or_default()) } }
                        td {
                            @match users.get(&conf.name) {
                                Some(tasks) => { @for (i, t) in tasks.iter().enumerate() { @if i > 0 { ", " } a href=(task_href(t)) { (t) } } }
                                None => span.muted { "no task" }
                            }
                        }
                    }
                }
                @if confs.is_empty() { tr { td colspan="3" { "No trigger confs." } } }
            }
        } }
    };
    Ok(html(layout::page(
        "Trigger confs",
        Nav::Confs,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RunsQuery {
    task: Option<String>,
    status: Option<String>,
    failed: Option<String>,
    before: Option<String>,
}

pub(super) async fn runs(
    viewer: Viewer,
    state: web::Data<ApiState>,
    query: web::Query<RunsQuery>,
) -> Page {
    let q = query.into_inner();
    let status_filter = given(&q.status)
        .as_deref()
        .map(crate::api::run_status)
        .transpose()?;
    let before = given(&q.before)
        .map(|c| {
            c.split_once(':')
                .and_then(|(f, i)| Some((f.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "before {} is not a cursor this page gave",
                        scheduler_core::quoted(&c)
                    ))
                    .on("before")
                })
        })
        .transpose()?;
    let failed_only = q.failed.is_some();
    let runs = store::list_runs(
        &state.db,
        &store::RunFilter {
            task: given(&q.task),
            status: status_filter,
            failed_only,
            limit: PAGE_ROWS,
            before,
            ..Default::default()
        },
    )
    .await?;
    let next = (runs.len() as u64 == PAGE_ROWS)
        .then(|| runs.last())
        .flatten()
        .map(|r| {
            let mut params = vec![("before", format!("{}:{}", r.fire_ts_ms, r.id))];
            for (k, v) in [("task", &q.task), ("status", &q.status)] {
                if let Some(v) = given(v) {
                    params.push((k, v));
                }
            }
            if failed_only {
                params.push(("failed", "on".to_owned()));
            }
            format!("/runs{}", query_string(&params))
        });
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Runs" }
        form.filters.card method="get" action="/runs" {
            div { label for="r-task" { "Task" } input #r-task type="text" name="task" value=[given(&q.task)]; }
            div {
                label for="r-status" { "Status" }
                select #r-status name="status" {
                    option value="" { "any" }
                    @for s in <RunStatus as sea_orm::Iterable>::iter() {
                        option value=(s.as_str()) selected[status_filter == Some(s)] { (s.as_str()) }
                    }
                }
            }
            div { label.check { input type="checkbox" name="failed" checked[failed_only]; "Failed only" } }
            div { button type="submit" { "Filter" } }
        }
        p.muted { "Times in your zone (" (viewer.zone.name()) "); hover for UTC. Newest first." }
        div.table-wrap { table #runs {
            thead { tr {
                th scope="col" { "Fire time" } th scope="col" { "Task" } th scope="col" { "Status" }
                th.wide scope="col" { "Node" } th.wide scope="col" { "Attempt" } th scope="col" { "Duration" } th scope="col" { "Error" }
            } }
            tbody {
                @for run in &runs {
                    tr {
                        td { a href=(format!("/runs/{}", url_encode(&run.run_id))) {
                            @if let Some(t) = DateTime::<Utc>::from_timestamp_millis(run.fire_ts_ms) { (when(t, viewer.zone)) }
                        } }
                        td { a href=(task_href(&run.task_name)) { (run.task_name) } }
                        td { (status(run.status.as_str())) }
                        td.wide { (run.node_id) }
                        td.wide { (run.attempt) }
                        td { (run.duration_ms.map(layout::duration_ms).unwrap_or_default()) }
                        td { (run.error.as_deref().unwrap_or_default()) }
                    }
                }
                @if runs.is_empty() { tr { td colspan="7" { "No runs match." } } }
            }
        } }
        nav.pager aria-label="Pages" {
            @if before.is_some() { a href="/runs" { "← Newest" } }
            @if let Some(next) = next { a href=(next) { "Older →" } }
        }
    };
    Ok(html(layout::page(
        "Runs",
        Nav::Runs,
        &viewer,
        &cluster,
        body,
    )))
}

pub(super) async fn run(
    viewer: Viewer,
    state: web::Data<ApiState>,
    run_id: web::Path<String>,
) -> Page {
    let run = store::get_run(&state.db, &run_id).await?;
    let json = crate::api::run_json(&run);
    let confs = conf_triggers(&state).await?;
    let zone = match store::get_task(&state.db, &run.task_name).await {
        Ok(task) => super::tasks::zone_of(super::tasks::trigger_of(&task, &confs).as_ref()),
        Err(_) => chrono_tz::UTC,
    };
    let cluster = store::cluster_pause(&state.db).await?;
    let fire = DateTime::<Utc>::from_timestamp_millis(run.fire_ts_ms);
    let body = html! {
        p { a href=(task_href(&run.task_name)) { "← " (run.task_name) } }
        h1 { "Run of " (run.task_name) }
        section.card {
            dl.fields {
                dt { "Run id" } dd { code { (run.run_id) } }
                dt { "Fire time" } dd {
                    @if let Some(t) = fire { (in_zone(t, zone)) " · " (in_zone(t, chrono_tz::UTC)) }
                }
                dt { "Status" } dd { (status(run.status.as_str())) }
                dt { "Node" } dd { (run.node_id) }
                dt { "Attempt" } dd { (run.attempt) }
                dt { "Started" } dd { (when(run.started_at, viewer.zone)) }
                dt { "Finished" } dd { @if let Some(t) = run.finished_at { (when(t, viewer.zone)) } @else { "not yet" } }
                dt { "Duration" } dd { (run.duration_ms.map(layout::duration_ms).unwrap_or_default()) }
                dt { "Error" } dd { (run.error.as_deref().unwrap_or("none")) }
            }
        }
        h2 { "Output (last KiB)" }
        @match json["output_tail"].as_str() {
            Some(tail) if !tail.is_empty() => pre #output { (tail) },
            _ => p.muted { "No output." },
        }
    };
    Ok(html(layout::page(
        "Run",
        Nav::Runs,
        &viewer,
        &cluster,
        body,
    )))
}

pub(super) async fn nodes(viewer: Viewer, state: web::Data<ApiState>) -> Page {
    let nodes = store::list_nodes(&state.db).await?;
    let running = store::running_runs(&state.db, 500).await?;
    let mut by_node: BTreeMap<&str, Vec<&entity::task_run::Model>> = BTreeMap::new();
    for run in &running {
        by_node.entry(run.node_id.as_str()).or_default().push(run);
    }
    let now = Utc::now();
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Nodes" }
        div.table-wrap { table #nodes {
            thead { tr {
                th scope="col" { "Node" } th scope="col" { "State" } th scope="col" { "Heartbeat" }
                th.wide scope="col" { "Host · pid" } th.wide scope="col" { "Version" } th scope="col" { "Running now" }
            } }
            tbody {
                @for node in &nodes {
                    @let runs = by_node.get(node.node_id.as_str());
                    tr {
                        td.name { (node.node_id) @if let Some(url) = &node.admin_url { span.sub { (url) } } }
                        td { (node.state.as_str()) }
                        td { (when(node.last_heartbeat, viewer.zone)) span.sub { ((now - node.last_heartbeat).num_seconds()) " s ago" } }
                        td.wide { (node.host) " · " (node.pid) }
                        td.wide { (node.version) }
                        td {
                            @match runs {
                                Some(runs) => { @for (i, r) in runs.iter().enumerate() { @if i > 0 { ", " } a href=(task_href(&r.task_name)) { (r.task_name) } } }
                                None => span.muted { "nothing" }
                            }
                        }
                    }
                }
            }
        } }
        p.muted { "Started " (nodes.len()) " node(s) known; a node whose heartbeat stops is marked dead by its peers." }
    };
    Ok(html(layout::page(
        "Nodes",
        Nav::Nodes,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FragmentQuery {
    fragment: Option<String>,
}

pub(super) async fn actors(
    viewer: Viewer,
    state: web::Data<ApiState>,
    console: web::Data<ConsoleState>,
    query: web::Query<FragmentQuery>,
) -> Page {
    let snapshot = state.metrics.snapshot();
    let now = std::time::Instant::now();
    let counts: std::collections::HashMap<String, u64> = snapshot
        .actors
        .iter()
        .map(|a| (a.actor.clone(), a.handled))
        .collect();
    // Messages per second: the change since the previous read of this page (by anyone).
    let rates: std::collections::HashMap<String, f64> = {
        let mut last = console
            .last_actor_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A rate over more than 10 s would be an average, not what happens now: start again.
        let age = last
            .as_ref()
            .map(|(then, _)| now.duration_since(*then).as_secs_f64());
        let rates = match last.as_ref() {
            Some((_, before)) if age.is_some_and(|age| age > 0.2 && age <= 10.0) => {
                let secs = age.unwrap_or(1.0);
                counts
                    .iter()
                    .map(|(k, v)| {
                        let prior = before.get(k).copied().unwrap_or(*v);
                        (k.clone(), v.saturating_sub(prior) as f64 / secs)
                    })
                    .collect()
            }
            _ => Default::default(),
        };
        if age.is_none_or(|age| age > 0.2) {
            *last = Some((now, counts));
        }
        rates
    };
    let table = html! {
        div.table-wrap { table #actors {
            thead { tr {
                th scope="col" { "Actor" } th.wide scope="col" { "Instances" } th scope="col" { "Mailbox" }
                th scope="col" { "Handled/s" } th.wide scope="col" { "Handled" } th scope="col" { "Mean handling" } th scope="col" { "Restarts" }
            } }
            tbody {
                @for actor in &snapshot.actors {
                    @let (count, total): (u64, f64) = actor.messages.values().fold((0, 0.0), |(c, t), m| (c + m.handling_seconds.count, t + m.handling_seconds.sum));
                    tr {
                        td.name { (actor.actor) }
                        td.wide { (actor.instances) }
                        td { (actor.mailbox_depth) }
                        td { @match rates.get(&actor.actor) { Some(r) => (format!("{r:.1}")), None => "…" } }
                        td.wide { (actor.handled) }
                        td { @if count > 0 { (format!("{:.3} ms", total / count as f64 * 1000.0)) } @else { "–" } }
                        td { (actor.restarts) }
                    }
                }
            }
        } }
        p.muted {
            "Fires " (snapshot.fires_total) " · persistence buffer " (snapshot.persistence_buffered) "/" (snapshot.persistence_buffer_bound)
            " · dropped writes " (snapshot.persistence_dropped_writes)
            @if snapshot.degraded { " · " strong.error { "degraded: a backend is down" } }
            " · read " (in_zone(Utc::now(), viewer.zone))
        }
    };
    if query.fragment.is_some() {
        return Ok(html(table));
    }
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Actors on this node" }
        p.muted { "Refreshes every 2 seconds. Other nodes show their own at their own address." }
        div #actors-live data-refresh="/actors?fragment=1" data-every="2000" { (table) }
    };
    Ok(html(layout::page(
        "Actors",
        Nav::Actors,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    target: Option<String>,
    actor: Option<String>,
    before: Option<i64>,
}

pub(super) async fn audit(
    viewer: Viewer,
    state: web::Data<ApiState>,
    query: web::Query<AuditQuery>,
) -> Page {
    let q = query.into_inner();
    let events = store::list_audit(
        &state.db,
        &store::AuditFilter {
            target: given(&q.target),
            actor: given(&q.actor),
            action: None,
            before_id: q.before,
            limit: PAGE_ROWS,
        },
    )
    .await?;
    let next = (events.len() as u64 == PAGE_ROWS)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Audit log" }
        form.filters.card method="get" action="/audit" {
            div { label for="a-target" { "Target" } input #a-target type="text" name="target" value=[given(&q.target)] placeholder="task:NAME, cluster"; }
            div { label for="a-actor" { "Actor" } input #a-actor type="text" name="actor" value=[given(&q.actor)] placeholder="token:NAME, cli:USER"; }
            div { button type="submit" { "Filter" } }
        }
        div.table-wrap { table #audit {
            thead { tr { th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th.wide scope="col" { "Change" } } }
            tbody {
                @for e in &events {
                    @let json = store::audit_json(e);
                    tr {
                        td { (when(e.at, viewer.zone)) }
                        td { (e.actor) }
                        td { (e.action) @if let Some(r) = &e.reason { span.sub { (r) } } }
                        td { (e.target) }
                        td.wide { details { summary { "before / after" } pre { "before: " (json["before"]) "\nafter:  " (json["after"]) } } }
                    }
                }
                @if events.is_empty() { tr { td colspan="5" { "Nothing recorded." } } }
            }
        } }
        nav.pager aria-label="Pages" {
            @if q.before.is_some() { a href="/audit" { "← Newest" } }
            @if let Some(id) = next { a href=(format!("/audit?before={id}")) { "Older →" } }
        }
    };
    Ok(html(layout::page(
        "Audit",
        Nav::Audit,
        &viewer,
        &cluster,
        body,
    )))
}

pub(super) async fn cluster(viewer: Viewer, state: web::Data<ApiState>) -> Page {
    let cluster = store::cluster_pause(&state.db).await?;
    let may = viewer.may(Role::Operator);
    let body = html! {
        h1 { "Cluster" }
        p {
            @if cluster.paused { strong { "Paused" } } @else { strong { "Running" } }
            " since " (when(cluster.changed_at, viewer.zone)) ", by " (cluster.changed_by)
            @if let Some(r) = &cluster.reason { ": " em { (r) } }
        }
        @if may {
            form.card method="post" action="/cluster" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="paused" value=(if cluster.paused { "false" } else { "true" });
                label for="reason" { "Reason (kept in the audit log)" }
                input #reason type="text" name="reason" required;
                p.hint {
                    @if cluster.paused { "On resume, fires missed meanwhile follow each task's misfire policy." }
                    @else { "While paused, no task fires on any node; running tasks finish." }
                }
                button #pause-toggle type="submit" class=(if cluster.paused { "" } else { "danger" }) {
                    @if cluster.paused { "Resume the cluster" } @else { "Pause the cluster" }
                }
            }
        }
    };
    Ok(html(layout::page(
        "Cluster",
        Nav::Cluster,
        &viewer,
        &cluster,
        body,
    )))
}

#[derive(Deserialize)]
pub(super) struct PauseForm {
    #[serde(default)]
    csrf: String,
    paused: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn set_cluster(
    viewer: Viewer,
    state: web::Data<ApiState>,
    form: web::Form<PauseForm>,
    req: HttpRequest,
) -> Page {
    viewer.check_form(&req, &form.csrf)?;
    let paused = match form.paused.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "paused {} is not true or false",
                scheduler_core::quoted(other)
            ))
            .on("paused")
            .into());
        }
    };
    crate::api::change_pause(&state, &viewer.caller, paused, form.reason.clone()).await?;
    Ok(see_other("/"))
}
