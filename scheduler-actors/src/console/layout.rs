//! The page around every console page (navigation, the cluster pause banner, sign-out), and
//! the small pieces every page shows the same way: times with their zone, run statuses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use super::Viewer;
use crate::api::Role;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub(super) async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "max-age=300"))
        .body(CSS)
}

pub(super) async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "max-age=300"))
        .body(JS)
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · cronmesh" }
            link rel="stylesheet" href="/console.css";
            script src="/console.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors before sign-in).
pub(super) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { (body) }
        }
    }
}

/// An error on a page of its own.
pub(super) fn error_page(status: StatusCode, message: &str) -> Markup {
    bare(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            main.narrow {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.error role="alert" { (message) }
                p { a href="/" { "Back to the tasks" } }
            }
        },
    )
}

/// Which navigation entry a page is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Tasks,
    Confs,
    Runs,
    Nodes,
    Actors,
    Audit,
    Alerts,
    Cluster,
}

const NAV: [(Nav, &str, &str); 7] = [
    (Nav::Tasks, "/", "Tasks"),
    (Nav::Confs, "/confs", "Trigger confs"),
    (Nav::Runs, "/runs", "Runs"),
    (Nav::Nodes, "/nodes", "Nodes"),
    (Nav::Actors, "/actors", "Actors"),
    (Nav::Audit, "/audit", "Audit"),
    (Nav::Alerts, "/alerts", "Alerts"),
];

/// A full page: navigation, the pause banner when the cluster is paused, the body.
pub(super) fn page(
    title: &str,
    nav: Nav,
    viewer: &Viewer,
    cluster: &store::ClusterPause,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "cronmesh" }
                    nav aria-label="Main" {
                        ul {
                            @for (entry, href, label) in NAV {
                                li {
                                    @if entry == nav {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (viewer.caller.name) " · " (viewer.caller.role.as_str()) }
                        @if viewer.may(Role::Operator) && !cluster.paused {
                            " · " a href="/cluster" { "Pause cluster" }
                        }
                        @if viewer.signed_in {
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if cluster.paused {
                    div.banner role="status" id="pause-banner" {
                        strong { "The cluster is paused: no task fires on any node." }
                        " Since " (when(cluster.changed_at, viewer.zone)) " by " (cluster.changed_by)
                        @if let Some(reason) = &cluster.reason { ": " em { (reason) } }
                        @if viewer.may(Role::Operator) {
                            " " a href="/cluster" { "Resume…" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// An instant in a zone, saying which: `2026-03-08 03:00:00 EDT`.
pub(super) fn in_zone(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// An instant in the viewer's zone, with its UTC and RFC 3339 form for machines.
pub(super) fn when(t: DateTime<Utc>, zone: Tz) -> Markup {
    html! {
        time datetime=(scheduler_core::rfc3339(t)) title=(in_zone(t, chrono_tz::UTC)) { (in_zone(t, zone)) }
    }
}

/// A run status as a coloured word.
pub(super) fn status(s: &str) -> Markup {
    html! { span class=(format!("st st-{s}")) { (s) } }
}

/// The last runs as coloured marks, oldest first; each says its status and fire time.
pub(super) fn marks(runs: &[(i64, String)], zone: Tz) -> Markup {
    html! {
        span.marks role="img" aria-label=(format!("last {} runs", runs.len())) {
            @for (fire_ms, s) in runs.iter().rev() {
                @let at = DateTime::<Utc>::from_timestamp_millis(*fire_ms).map(|t| in_zone(t, zone)).unwrap_or_default();
                span class=(format!("mark st-{s}")) title=(format!("{s} · {at}")) {}
            }
        }
    }
}

/// Percent-encodes a query value.
pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?k=v&...` with each value percent-encoded (empty with no pairs).
pub(super) fn query_string(params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    format!("?{}", pairs.join("&"))
}

/// A path segment for a task name (names hold only characters safe in a path, but a name
/// from a URL is encoded anyway).
pub(super) fn task_href(name: &str) -> String {
    format!("/tasks/{}", url_encode(name).replace('/', "%2F"))
}

/// Milliseconds as people read them: `850 ms`, `12.3 s`, `4 min 5 s`.
pub(super) fn duration_ms(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_say_their_zone() {
        let t = DateTime::parse_from_rfc3339("2026-03-08T07:00:00Z")
            .expect("instant")
            .with_timezone(&Utc);
        assert_eq!(
            in_zone(t, chrono_tz::America::New_York),
            "2026-03-08 03:00:00 EDT"
        );
        assert_eq!(in_zone(t, chrono_tz::UTC), "2026-03-08 07:00:00 UTC");
        assert_eq!(url_encode("a b&c/d"), "a%20b%26c/d");
        assert_eq!(duration_ms(61_500), "1 min 1 s");
    }
}
