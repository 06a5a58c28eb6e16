//! Alerts: a failed, missed or silent task reported to Slack or any webhook, without anyone
//! watching a console.
//!
//! - `mod.rs`: what an alert is ([`AlertEvent`], [`Alert`]) and where it goes ([`AlertRoute`],
//!   [`AlertConfig`]): routes from the settings, matched by event, task name glob, module and
//!   owner, plus the routes a task names itself (and a crontab `MAILTO` naming a route).
//! - `payload.rs`: the bodies: Slack's Block Kit (mrkdwn, its escaping and size limits) and the
//!   signed JSON payload.
//! - `deliver.rs`: one route's queue: throttling, retries with backoff, the delivery record.
//! - `dispatch.rs`: the node's alerter: it follows the node's run events (so the node that
//!   records an outcome is the one that alerts, once), enriches them from the database, and
//!   the dead-man check (`silent`).
//!
//! Nothing here is on the scheduling path: events are read from the node's broadcast (which
//! never waits for a reader), and every route has a bounded queue of its own.

mod deliver;
mod dispatch;
mod payload;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use self::deliver::{Outcome, RetryPolicy, send_test};
pub(crate) use self::dispatch::{Alerter, silence_check_task};
pub use self::payload::{JsonPayload, sign};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertEvent {
    /// A run ended `failed`.
    Failed,
    /// A run ended `timed_out`.
    TimedOut,
    /// A run's handler panicked.
    Panicked,
    /// A run lost its fire lock.
    LockLost,
    /// A run's node died (reported by the node that settled it).
    Abandoned,
    /// Fires were not run: dropped by the misfire policy, or not claimable.
    Misfired,
    /// A run was interrupted by a node's shutdown.
    Interrupted,
    /// The first success after failures.
    Recovered,
    /// No success for the task's `alert_if_no_success_for`.
    Silent,
    /// `cronmesh alerts test`.
    Test,
}

/// Every event a route may name in `on`, as written.
pub const ALERT_EVENTS: [AlertEvent; 9] = [
    AlertEvent::Failed,
    AlertEvent::TimedOut,
    AlertEvent::Panicked,
    AlertEvent::LockLost,
    AlertEvent::Abandoned,
    AlertEvent::Misfired,
    AlertEvent::Interrupted,
    AlertEvent::Recovered,
    AlertEvent::Silent,
];

impl AlertEvent {
    /// As written in `on` and in payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Failed => "failed",
            AlertEvent::TimedOut => "timed_out",
            AlertEvent::Panicked => "panicked",
            AlertEvent::LockLost => "lock_lost",
            AlertEvent::Abandoned => "abandoned",
            AlertEvent::Misfired => "misfired",
            AlertEvent::Interrupted => "interrupted",
            AlertEvent::Recovered => "recovered",
            AlertEvent::Silent => "silent",
            AlertEvent::Test => "test",
        }
    }

    /// The event of a run's final status, if it is one to alert on.
    pub(crate) fn of_status(status: crate::RunStatus) -> Option<AlertEvent> {
        use crate::RunStatus as S;
        Some(match status {
            S::Failed => AlertEvent::Failed,
            S::TimedOut => AlertEvent::TimedOut,
            S::Panicked => AlertEvent::Panicked,
            S::LockLost => AlertEvent::LockLost,
            S::Abandoned => AlertEvent::Abandoned,
            S::Misfired => AlertEvent::Misfired,
            S::Interrupted => AlertEvent::Interrupted,
            _ => return None,
        })
    }

    /// Whether it reports something going wrong (a red alert) rather than a recovery or a test.
    pub fn is_bad(self) -> bool {
        !matches!(self, AlertEvent::Recovered | AlertEvent::Test)
    }
}

impl std::str::FromStr for AlertEvent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALERT_EVENTS
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = ALERT_EVENTS.iter().map(|e| e.as_str()).collect();
                format!(
                    "{} is not an alert event; give any of {}",
                    scheduler_core::quoted(s),
                    all.join(", ")
                )
            })
    }
}

/// How a route's body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFormat {
    /// A Slack incoming webhook: `text` and Block Kit blocks in Slack's mrkdwn.
    Slack,
    /// The documented JSON payload ([`JsonPayload`]), signed with the route's secret.
    Json,
}

/// A route as written in `[[alerts.routes]]` (see [`AlertRoute::from_spec`]).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRouteSpec {
    /// Its name (unique; a task's `alert_routes` and a crontab `MAILTO` name it).
    pub name: String,
    /// Where to POST (`http` or `https`). A Slack webhook URL holds a secret: it is never
    /// logged or shown.
    pub url: String,
    /// `slack` or `json`.
    pub format: String,
    /// Events it takes (default: every event but `recovered` and `silent`).
    #[serde(default)]
    pub on: Option<Vec<String>>,
    /// Only tasks whose name matches this glob (`orders.*`).
    #[serde(default)]
    pub tasks: Option<String>,
    /// Only tasks of this module.
    #[serde(default)]
    pub module: Option<String>,
    /// Only tasks of this owner.
    #[serde(default)]
    pub owner: Option<String>,
    /// `json`: the HMAC-SHA256 key the body is signed with (required).
    #[serde(default)]
    pub secret: Option<String>,
    /// At most one alert per task in this many seconds (default 300); the ones held back are
    /// counted in the next.
    #[serde(default)]
    pub min_interval_secs: Option<u64>,
    /// Only named by tasks (`alert_routes`, `MAILTO`), never matched by itself.
    #[serde(default)]
    pub only_when_named: Option<bool>,
}

impl fmt::Debug for AlertRouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertRouteSpec")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// A validated route.
#[derive(Clone, PartialEq)]
pub struct AlertRoute {
    /// Its name.
    pub name: String,
    url: String,
    /// Its body.
    pub format: AlertFormat,
    on: Vec<AlertEvent>,
    tasks: Option<glob::Pattern>,
    module: Option<String>,
    owner: Option<String>,
    secret: Option<String>,
    /// At most one alert per task in this long.
    pub min_interval: Duration,
    only_when_named: bool,
}

/// Never shows the URL or the secret.
impl fmt::Debug for AlertRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertRoute")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("on", &self.on)
            .finish_non_exhaustive()
    }
}

/// The default throttle.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(300);

impl AlertRoute {
    /// Checks a route as written; the error names the key (after `key`, e.g.
    /// `alerts.routes[0]`) and what is wrong, never the URL's secret parts.
    pub fn from_spec(key: &str, spec: AlertRouteSpec) -> Result<AlertRoute, String> {
        let name = spec.name.trim().to_owned();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(format!(
                "`{key}.name`: give the route a name (1 to 100 printable characters)"
            ));
        }
        let field = |f: &str| format!("`{key}.{f}` (route {})", scheduler_core::quoted(&name));
        let url = reqwest::Url::parse(spec.url.trim())
            .map_err(|e| format!("{}: not a URL ({e})", field("url")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{}: must be an http or https URL with a host",
                field("url")
            ));
        }
        let format = match spec.format.as_str() {
            "slack" => AlertFormat::Slack,
            "json" => AlertFormat::Json,
            other => {
                return Err(format!(
                    "{}: {} is not a format; give \"slack\" or \"json\"",
                    field("format"),
                    scheduler_core::quoted(other)
                ));
            }
        };
        let on = match spec.on {
            None => ALERT_EVENTS
                .iter()
                .copied()
                .filter(|e| !matches!(e, AlertEvent::Recovered | AlertEvent::Silent))
                .collect(),
            Some(list) if list.is_empty() => {
                return Err(format!("{}: empty; name the events it takes", field("on")));
            }
            Some(list) => list
                .iter()
                .map(|e| e.trim().parse::<AlertEvent>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", field("on")))?,
        };
        let tasks = spec
            .tasks
            .map(|g| {
                glob::Pattern::new(&g).map_err(|e| {
                    format!(
                        "{}: {} is not a glob ({e})",
                        field("tasks"),
                        scheduler_core::quoted(&g)
                    )
                })
            })
            .transpose()?;
        let secret = spec.secret.filter(|s| !s.is_empty());
        if format == AlertFormat::Json && secret.as_deref().is_none_or(|s| s.len() < 16) {
            return Err(format!(
                "{}: a json route signs its body; give a secret of at least 16 characters",
                field("secret")
            ));
        }
        let min_interval = spec
            .min_interval_secs
            .map_or(DEFAULT_MIN_INTERVAL, Duration::from_secs);
        if min_interval > Duration::from_secs(7 * 86_400) {
            return Err(format!(
                "{}: {} s is more than a week (604800)",
                field("min_interval_secs"),
                min_interval.as_secs()
            ));
        }
        Ok(AlertRoute {
            name,
            url: url.to_string(),
            format,
            on,
            tasks,
            module: spec.module,
            owner: spec.owner,
            secret,
            min_interval,
            only_when_named: spec.only_when_named.unwrap_or(false),
        })
    }

    /// Whether it takes `event`.
    pub fn takes(&self, event: AlertEvent) -> bool {
        event == AlertEvent::Test || self.on.contains(&event)
    }

    /// Whether its task filters match (by name alone, before the task's owner is known).
    fn matches_name(&self, task: &str) -> bool {
        !self.only_when_named
            && self.tasks.as_ref().is_none_or(|g| g.matches(task))
            && self
                .module
                .as_ref()
                .is_none_or(|m| scheduler_core::validate_name(task).is_ok_and(|module| module == m))
    }

    /// Whether it matches a task by its filters.
    pub fn matches(&self, task: &str, owner: &str) -> bool {
        self.matches_name(task) && self.owner.as_ref().is_none_or(|o| o == owner)
    }

    /// Its URL, to send to only (never to log).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Its secret (json routes).
    pub(crate) fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

/// The node's alert settings (`[alerts]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertConfig {
    /// The console's address as people reach it (`alerts.console_url`), for links to runs.
    pub console_url: Option<String>,
    /// The routes.
    pub routes: Vec<AlertRoute>,
    /// How every route retries.
    pub retry: RetryPolicy,
}

impl AlertConfig {
    /// The route named `name`.
    pub fn route(&self, name: &str) -> Option<&AlertRoute> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Whether some route could take `event` for a task named `task` (without knowing its
    /// owner or the routes it names): the cheap check before anything is read.
    pub(crate) fn may_take(&self, event: AlertEvent, task: &str) -> bool {
        self.routes
            .iter()
            .any(|r| r.takes(event) && r.matches_name(task))
    }
}

/// One alert, as every format writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What happened.
    pub event: AlertEvent,
    /// The task.
    pub task: String,
    /// Its owner.
    pub owner: String,
    /// The task's zone (for the fire time in local time), if it has one.
    pub zone: Option<chrono_tz::Tz>,
    /// The node that reports it.
    pub node: String,
    /// The run, if it is about one.
    pub run_id: Option<String>,
    /// The fire.
    pub fire_time: Option<DateTime<Utc>>,
    /// The run's status.
    pub status: Option<String>,
    /// Attempt.
    pub attempt: Option<u32>,
    /// How long it ran.
    pub duration_ms: Option<u64>,
    /// The error, or what happened in words.
    pub error: Option<String>,
    /// The end of its output.
    pub output_tail: Option<String>,
    /// Alerts of the same route and task held back by the throttle before this one.
    pub suppressed: u64,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

impl Alert {
    /// A sample, for `cronmesh alerts test`.
    pub fn sample(node: &str) -> Alert {
        Alert {
            event: AlertEvent::Test,
            task: "cronmesh.alert_test".to_owned(),
            owner: "cronmesh".to_owned(),
            zone: Some(chrono_tz::UTC),
            node: node.to_owned(),
            run_id: None,
            fire_time: Some(Utc::now()),
            status: None,
            attempt: None,
            duration_ms: None,
            error: Some("a test alert from `cronmesh alerts test`: this route works".to_owned()),
            output_tail: None,
            suppressed: 0,
            at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: &str) -> AlertRouteSpec {
        AlertRouteSpec {
            name: "ops".to_owned(),
            url: "http://127.0.0.1:9/hook".to_owned(),
            format: format.to_owned(),
            secret: Some("0123456789abcdef".to_owned()),
            ..AlertRouteSpec::default()
        }
    }

    #[test]
    fn routes_are_checked_and_every_error_names_the_key() {
        let err =
            |s: AlertRouteSpec| AlertRoute::from_spec("alerts.routes[0]", s).expect_err("refused");
        let mut s = spec("teams");
        let e = err(s.clone());
        assert!(
            e.contains("`alerts.routes[0].format` (route \"ops\"): \"teams\""),
            "{e}"
        );
        s = spec("json");
        s.secret = None;
        assert!(err(s).contains(".secret`"));
        s = spec("slack");
        s.on = Some(vec!["failed".into(), "exploded".into()]);
        let e = err(s);
        assert!(e.contains(".on") && e.contains("\"exploded\""), "{e}");
        s = spec("slack");
        s.url = "ftp://127.0.0.1/x".to_owned();
        assert!(err(s).contains(".url` (route \"ops\"): must be an http or https URL"));
        s = spec("slack");
        s.tasks = Some("orders.[".to_owned());
        assert!(err(s).contains(".tasks` (route \"ops\"): \"orders.[\" is not a glob"));
    }

    #[test]
    fn a_route_matches_by_glob_module_and_owner_and_takes_its_events() {
        let mut s = spec("slack");
        s.tasks = Some("orders.*".to_owned());
        s.owner = Some("ops".to_owned());
        let r = AlertRoute::from_spec("r", s).expect("valid");
        assert!(r.matches("orders.reconcile", "ops"));
        assert!(!r.matches("orders.reconcile", "web"));
        assert!(!r.matches("billing.run", "ops"));
        assert!(r.takes(AlertEvent::Failed) && !r.takes(AlertEvent::Recovered));
        let mut s = spec("slack");
        s.module = Some("billing".to_owned());
        let r = AlertRoute::from_spec("r", s).expect("valid");
        assert!(r.matches("billing.run", "x") && !r.matches("billing2.run", "x"));
    }

    #[test]
    fn a_route_never_shows_its_url_or_secret() {
        let mut s = spec("json");
        s.url = "https://127.0.0.1/services/T0/B0/SECRETPATH".to_owned();
        let shown = format!("{:?} {:?}", s, AlertRoute::from_spec("r", s.clone()));
        assert!(
            !shown.contains("SECRETPATH") && !shown.contains("0123456789abcdef"),
            "{shown}"
        );
    }
}
