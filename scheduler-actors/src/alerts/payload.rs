//! The bodies of an alert: Slack's (mrkdwn and Block Kit, its escaping and limits) and the
//! signed JSON payload.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Alert, AlertEvent};

/// Slack's limits, with room for the truncation marker: a header block's text, a section's
/// text, and the fallback `text`.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FALLBACK_MAX: usize = 3000;
/// Where a text was cut.
const CUT: &str = "… (truncated)";

/// Escapes text for Slack's mrkdwn: `&`, `<` and `>`, and nothing else (Slack's rule; other
/// characters are shown as they are).
pub(crate) fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` in at most `max` characters, cut at a character boundary with a marker.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(CUT.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(CUT);
    out
}

/// The end of `text` in at most `max` characters, the marker first (an output's last lines
/// are the ones that say what went wrong).
pub(crate) fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(TAIL_CUT.chars().count());
    let mut out = TAIL_CUT.to_owned();
    out.extend(text.chars().skip(count - keep));
    out
}

/// Where the start of an output was cut.
const TAIL_CUT: &str = "(truncated) …";

/// Escaped and then cut to `max`, without cutting an escape (`&amp;`) in two.
fn slack_text(text: &str, max: usize) -> String {
    safe_cut(slack_escape(text), max)
}

/// Escaped text cut to `max` without cutting an escape (`&amp;`) in two.
fn safe_cut(escaped: String, max: usize) -> String {
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut out = truncate(&escaped, max);
    // An entity cut in two would show as text: drop its start.
    if let Some(amp) = out[..out.len() - CUT.len()].rfind('&')
        && !out[amp..out.len() - CUT.len()].contains(';')
    {
        out.replace_range(amp..out.len() - CUT.len(), "");
    }
    out
}

/// The fire time in UTC and in the task's zone.
fn fire_times(alert: &Alert) -> Option<(String, Option<String>)> {
    let t = alert.fire_time?;
    let utc = scheduler_core::rfc3339(t);
    let local = alert.zone.filter(|z| *z != chrono_tz::UTC).map(|z| {
        t.with_timezone(&z)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    });
    Some((utc, local))
}

/// A one-line summary: the fallback text, and the header.
fn headline(alert: &Alert) -> String {
    match alert.event {
        AlertEvent::Recovered => format!("{} recovered", alert.task),
        AlertEvent::Silent => format!("{} has had no success", alert.task),
        AlertEvent::Test => "cronmesh test alert".to_owned(),
        AlertEvent::Misfired => format!("{} missed fires", alert.task),
        e => format!("{} {}", alert.task, e.as_str().replace('_', " ")),
    }
}

/// A link to the run (or the task) in the console, when the console's address is known.
fn console_link(alert: &Alert, console_url: Option<&str>) -> Option<String> {
    let base = console_url?.trim_end_matches('/');
    Some(match &alert.run_id {
        Some(run) => format!("{base}/runs/{run}"),
        None => format!("{base}/tasks/{}", alert.task),
    })
}

/// A Slack incoming-webhook body: `text` (the fallback) and blocks: a header, a section of
/// fields (task, owner, node, fire time in UTC and the task's zone, status, attempt, duration),
/// the error, the output tail in a code block, and a link to the run in the console.
pub(crate) fn slack_body(alert: &Alert, console_url: Option<&str>) -> Value {
    let mut lines = vec![
        format!("*Task:* `{}`", slack_escape(&alert.task)),
        format!(
            "*Owner:* {}",
            if alert.owner.is_empty() {
                "-".to_owned()
            } else {
                slack_escape(&alert.owner)
            }
        ),
        format!("*Node:* {}", slack_escape(&alert.node)),
    ];
    if let Some((utc, local)) = fire_times(alert) {
        lines.push(match local {
            Some(local) => format!("*Fire time:* {utc} ({})", slack_escape(&local)),
            None => format!("*Fire time:* {utc}"),
        });
    }
    if let Some(status) = &alert.status {
        lines.push(format!("*Status:* {}", slack_escape(status)));
    }
    if let Some(attempt) = alert.attempt {
        lines.push(format!("*Attempt:* {attempt}"));
    }
    if let Some(ms) = alert.duration_ms {
        lines.push(format!("*Duration:* {} s", ms as f64 / 1000.0));
    }
    if alert.suppressed > 0 {
        lines.push(format!(
            "*Held back since the last alert:* {} similar",
            alert.suppressed
        ));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&headline(alert), HEADER_MAX), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": safe_cut(lines.join("\n"), SECTION_MAX)}}),
    ];
    if let Some(error) = alert.error.as_deref().filter(|e| !e.is_empty()) {
        let text = format!("*Error:* {}", slack_text(error, SECTION_MAX - 10));
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if let Some(output) = alert.output_tail.as_deref().filter(|o| !o.is_empty()) {
        // A code block cannot hold its own fence: break any ``` in the output.
        // Its end, which says what went wrong; a trailing backtick would close the fence early.
        let mut output = tail(&output.replace("```", "`\u{200b}``"), SECTION_MAX - 600);
        if output.ends_with('`') {
            output.push('\u{200b}');
        }
        let text = format!("```{}```", slack_text(&output, SECTION_MAX - 8));
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if let Some(link) = console_link(alert, console_url) {
        let what = if alert.run_id.is_some() {
            "Open the run in the console"
        } else {
            "Open the task in the console"
        };
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{}|{what}>", slack_escape(&link))}]}));
    }
    let mut fallback = slack_escape(&headline(alert));
    if let Some(error) = &alert.error {
        fallback.push_str(": ");
        fallback.push_str(&slack_escape(error));
    }
    json!({"text": safe_cut(fallback, FALLBACK_MAX), "blocks": blocks})
}

/// The body of a `json` route: this shape, as the OpenAPI document's `AlertPayload` schema
/// says. Sent with `X-Cronmesh-Timestamp` (Unix seconds) and `X-Cronmesh-Signature`
/// (`sha256=` and the hex HMAC-SHA256, keyed with the route's secret, of the timestamp, a
/// `.`, and the body): a receiver recomputes it, and refuses a timestamp more than five
/// minutes off (a replayed body).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JsonPayload {
    /// `failed`, `timed_out`, `panicked`, `lock_lost`, `abandoned`, `misfired`,
    /// `interrupted`, `recovered`, `silent` or `test`.
    pub event: String,
    /// The task's name.
    pub task: String,
    /// Its owner.
    pub owner: String,
    /// The node that reports it.
    pub node: String,
    /// The run (absent for `silent` and `test`).
    pub run_id: Option<String>,
    /// The fire, RFC 3339 UTC.
    pub fire_time: Option<String>,
    /// The fire in the task's zone.
    pub fire_time_local: Option<String>,
    /// The task's zone.
    pub zone: Option<String>,
    /// The run's status.
    pub status: Option<String>,
    /// Attempt (1, or more for a re-run of a fire whose node died).
    pub attempt: Option<u32>,
    /// How long it ran.
    pub duration_ms: Option<u64>,
    /// The error, or what happened in words.
    pub error: Option<String>,
    /// The end of its output (at most 4 KiB).
    pub output_tail: Option<String>,
    /// The run (or task) in the console, when `alerts.console_url` is set.
    pub console_url: Option<String>,
    /// Alerts of this route and task held back by the throttle since the last one sent.
    pub suppressed: u64,
    /// When the alert was raised, RFC 3339 UTC.
    pub raised_at: String,
}

impl JsonPayload {
    pub(crate) fn of(alert: &Alert, console_url: Option<&str>) -> JsonPayload {
        let times = fire_times(alert);
        JsonPayload {
            event: alert.event.as_str().to_owned(),
            task: alert.task.clone(),
            owner: alert.owner.clone(),
            node: alert.node.clone(),
            run_id: alert.run_id.clone(),
            fire_time: times.as_ref().map(|t| t.0.clone()),
            fire_time_local: times.and_then(|t| t.1),
            zone: alert.zone.map(|z| z.name().to_owned()),
            status: alert.status.clone(),
            attempt: alert.attempt,
            duration_ms: alert.duration_ms,
            error: alert.error.clone(),
            output_tail: alert.output_tail.as_deref().map(|o| tail(o, 4096)),
            console_url: console_link(alert, console_url),
            suppressed: alert.suppressed,
            raised_at: scheduler_core::rfc3339(alert.at),
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `timestamp.body` keyed with `secret`, as
/// `X-Cronmesh-Signature` carries it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Alert {
        Alert {
            event: AlertEvent::Failed,
            task: "orders.sync".to_owned(),
            owner: "ops & co".to_owned(),
            zone: Some(chrono_tz::Europe::Berlin),
            node: "n1".to_owned(),
            run_id: Some("r-1".to_owned()),
            fire_time: "2027-01-04T08:00:00Z".parse().ok(),
            status: Some("failed".to_owned()),
            attempt: Some(1),
            duration_ms: Some(1500),
            error: Some("<script>&alert(1)</script> *bold*".to_owned()),
            output_tail: Some("line 1\n```\nline <2>".to_owned()),
            suppressed: 3,
            at: "2027-01-04T08:00:02Z".parse().expect("instant"),
        }
    }

    #[test]
    fn slack_gets_its_three_escapes_and_nothing_else() {
        let body = slack_body(&failed(), Some("https://127.0.0.1:8080/")).to_string();
        assert!(
            body.contains("&lt;script&gt;&amp;alert(1)&lt;/script&gt; *bold*"),
            "{body}"
        );
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("ops &amp; co"));
        assert!(body.contains("09:00:00 CET"), "local fire time: {body}");
        assert!(body.contains("<https://127.0.0.1:8080/runs/r-1|Open the run in the console>"));
        assert!(body.contains("3 similar"));
        assert!(
            !body.contains("\n```\nline"),
            "fence inside the code block: {body}"
        );
    }

    #[test]
    fn slack_texts_are_cut_to_its_limits_with_a_marker() {
        let mut a = failed();
        a.error = Some("&".repeat(5000));
        a.task = "x".repeat(400);
        let body = slack_body(&a, None);
        for block in body["blocks"].as_array().expect("blocks") {
            let text = block["text"]["text"].as_str().unwrap_or_default();
            let max = if block["type"] == "header" {
                HEADER_MAX
            } else {
                SECTION_MAX
            };
            assert!(
                text.chars().count() <= max,
                "{} chars",
                text.chars().count()
            );
        }
        let error = body["blocks"][2]["text"]["text"]
            .as_str()
            .expect("error block");
        assert!(error.ends_with(CUT), "{error}");
        assert!(
            !error.trim_end_matches(CUT).ends_with("&am"),
            "an entity cut in two"
        );
        assert!(body["text"].as_str().expect("text").chars().count() <= FALLBACK_MAX);
    }

    #[test]
    fn an_output_keeps_its_end() {
        let mut a = failed();
        a.output_tail = Some(format!("{}THE LAST LINE", "x".repeat(10_000)));
        let body = slack_body(&a, None).to_string();
        assert!(
            body.contains("THE LAST LINE") && body.contains("(truncated)"),
            "{body}"
        );
        let json = JsonPayload::of(&a, None).output_tail.expect("output");
        assert!(json.ends_with("THE LAST LINE") && json.chars().count() <= 4096);
    }

    #[test]
    fn the_signature_is_an_hmac_of_timestamp_and_body() {
        // Python's hmac.new(b"Jefe", b"1.body", hashlib.sha256).hexdigest().
        let s = sign("Jefe", 1, b"body");
        assert_eq!(
            s,
            "sha256=25d254c27761adb1423727084ca395476858b2401387226230b6358cf07fad8b"
        );
        assert_eq!(s, sign("Jefe", 1, b"body"));
        assert_ne!(s, sign("Jefe", 2, b"body"));
        assert_ne!(s, sign("Jeff", 1, b"body"));
    }
}
