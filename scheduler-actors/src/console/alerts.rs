//! The alerts page: every alert sent or given up on, newest first, by task or route.

use actix_web::web;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Nav, in_zone, task_href, when};
use super::{Page, Viewer, given, html};
use crate::api::ApiState;

/// Rows per page.
const PAGE_ROWS: u64 = 50;

#[derive(Debug, Deserialize)]
pub(super) struct AlertsQuery {
    task: Option<String>,
    route: Option<String>,
    before: Option<i64>,
}

pub(super) async fn list(
    viewer: Viewer,
    state: web::Data<ApiState>,
    query: web::Query<AlertsQuery>,
) -> Page {
    let q = query.into_inner();
    let rows = store::list_deliveries(
        &state.db,
        &store::DeliveryFilter {
            task: given(&q.task),
            route: given(&q.route),
            limit: PAGE_ROWS,
            before_id: q.before,
        },
    )
    .await?;
    let next = (rows.len() as u64 == PAGE_ROWS)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    // The filters, kept by the pager links.
    let link = |before: Option<i64>| {
        let mut params = Vec::new();
        if let Some(t) = given(&q.task) {
            params.push(("task", t));
        }
        if let Some(r) = given(&q.route) {
            params.push(("route", r));
        }
        if let Some(b) = before {
            params.push(("before", b.to_string()));
        }
        format!("/alerts{}", layout::query_string(&params))
    };
    let cluster = store::cluster_pause(&state.db).await?;
    let body = html! {
        h1 { "Alerts" }
        p.muted { "Every alert a node sent to a route, or gave up on, newest first. Routes are set in each node's [alerts] config." }
        form.filters.card method="get" action="/alerts" {
            div { label for="al-task" { "Task" } input #al-task type="text" name="task" value=[given(&q.task)]; }
            div { label for="al-route" { "Route" } input #al-route type="text" name="route" value=[given(&q.route)]; }
            div { button type="submit" { "Filter" } }
        }
        div.table-wrap { table #alerts {
            thead { tr {
                th scope="col" { "Sent" } th scope="col" { "Route" } th scope="col" { "Event" }
                th scope="col" { "Task" } th scope="col" { "Fire time" } th scope="col" { "Delivery" }
                th.wide scope="col" { "Node" } th scope="col" { "Error" }
            } }
            tbody {
                @for d in &rows {
                    tr {
                        td { (when(d.created_at, viewer.zone)) }
                        td { (d.route) }
                        td { span class=(format!("st st-{}", d.event)) { (d.event) } }
                        td { a href=(task_href(&d.task_name)) { (d.task_name) } }
                        td {
                            @match (d.fire_ts_ms.and_then(chrono::DateTime::from_timestamp_millis), &d.run_id) {
                                (Some(t), Some(run)) => a href=(format!("/runs/{}", layout::url_encode(run))) { (in_zone(t, viewer.zone)) },
                                (Some(t), None) => (in_zone(t, viewer.zone)),
                                _ => "-",
                            }
                        }
                        td {
                            (d.state) " · " (d.attempts) " attempt(s)"
                            @if let Some(s) = d.http_status { " · HTTP " (s) }
                            @if d.suppressed > 0 { span.sub { (d.suppressed) " held back before it" } }
                        }
                        td.wide { (d.node_id) }
                        td { (d.error.as_deref().unwrap_or_default()) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="8" { "No alert sent yet." } } }
            }
        } }
        nav.pager aria-label="Pages" {
            @if q.before.is_some() { a href=(link(None)) { "← Newest" } }
            @if let Some(id) = next { a #older href=(link(Some(id))) { "Older →" } }
        }
    };
    Ok(html(layout::page(
        "Alerts",
        Nav::Alerts,
        &viewer,
        &cluster,
        body,
    )))
}
