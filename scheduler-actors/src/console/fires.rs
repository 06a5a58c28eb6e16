//! A task's fires on its pages: the next ones (with their DST notes), the recorded ones (with
//! the line where it was cut over from shadow to real runs), and its shadow mode in words.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use scheduler_core::Shadow;

use super::Viewer;
use super::layout::{self, in_zone, status, url_encode};

/// The next fires in the trigger's zone and UTC, with their DST notes.
pub(super) fn fire_list(fires: &[scheduler_core::PreviewFire], zone: Tz) -> Markup {
    html! {
        @if fires.is_empty() {
            p { "It will not fire again." }
        } @else {
            ol.fires {
                @for fire in fires {
                    @let utc = DateTime::parse_from_rfc3339(&fire.utc).ok().map(|t| t.with_timezone(&Utc));
                    li {
                        @if let Some(t) = utc { (in_zone(t, zone)) span.muted { " · " (in_zone(t, chrono_tz::UTC)) } } @else { (fire.local) }
                        @if let Some(note) = &fire.note { span.note { (note) } }
                    }
                }
            }
        }
    }
}

/// A task's shadow mode as a pill: `shadow`, `shadow until ...` before its cut-over; nothing
/// for a task that runs for real (also once its cut-over has passed).
pub(super) fn shadow_pill(r: &entity::scheduled_task::Model, zone: Tz) -> Markup {
    html! {
        @match Shadow::from_columns(r.shadow, r.cutover_at) {
            Shadow::On => span.pill.shadow title="fires are recorded, the handler does not run" { "shadow" },
            Shadow::Until(at) if at > Utc::now() => span.pill.shadow { "shadow until " (in_zone(at, zone)) },
            _ => {}
        }
    }
}

/// Whether the task's fires run its handler, in words.
pub(super) fn mode_in_words(r: &entity::scheduled_task::Model, zone: Tz) -> String {
    match Shadow::from_columns(r.shadow, r.cutover_at) {
        Shadow::Off => "runs for real".to_owned(),
        Shadow::On => "shadow: fires are recorded as `shadow`, the handler does not run".to_owned(),
        Shadow::Until(at) if at > Utc::now() => format!(
            "shadow until the cut-over at {}; from then on it runs for real",
            in_zone(at, zone)
        ),
        Shadow::Until(at) => format!(
            "runs for real since the cut-over at {} (earlier fires were shadow)",
            in_zone(at, zone)
        ),
    }
}

/// The recorded fires, newest first, with a line where the task was cut over.
pub(super) fn timeline(
    runs: &[entity::task_run::Model],
    zone: Tz,
    viewer: &Viewer,
    shadow: Shadow,
) -> Markup {
    let cutover_ms = match shadow {
        Shadow::Until(at) => Some(at.timestamp_millis()),
        _ => None,
    };
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { "Fire time" }
                    th scope="col" { "Status" }
                    th.wide scope="col" { "Node" }
                    th.wide scope="col" { "Attempt" }
                    th scope="col" { "Duration" }
                    th scope="col" { "Error" }
                } }
                tbody {
                    @for (i, run) in runs.iter().enumerate() {
                        @let fire = DateTime::<Utc>::from_timestamp_millis(run.fire_ts_ms);
                        @let newer = i.checked_sub(1).map(|j| runs[j].fire_ts_ms);
                        @if let Some(cut) = cutover_ms.filter(|c| run.fire_ts_ms < *c && newer.is_some_and(|n| n >= *c)) {
                            tr.cutover { td colspan="6" {
                                "Cut over at " (DateTime::<Utc>::from_timestamp_millis(cut).map(|t| in_zone(t, zone)).unwrap_or_default())
                                ": fires above run for real, fires below were shadow"
                            } }
                        }
                        tr {
                            td { a href=(format!("/runs/{}", url_encode(&run.run_id))) {
                                @if let Some(t) = fire { (in_zone(t, zone)) } @else { (run.fire_ts_ms) }
                            }
                            @if let Some(t) = fire { @if zone != viewer.zone { span.sub { (in_zone(t, viewer.zone)) } } } }
                            td { (status(run.status.as_str())) }
                            td.wide { (run.node_id) }
                            td.wide { (run.attempt) }
                            td { (run.duration_ms.map(layout::duration_ms).unwrap_or_default()) }
                            td { (run.error.as_deref().unwrap_or_default()) }
                        }
                    }
                    @if runs.is_empty() { tr { td colspan="6" { "No fires recorded yet." } } }
                }
            }
        }
    }
}
