//! Task declarations and validated task specs.
//!
//! A [`TaskDecl`] is what code (or the database, or the CLI) says about a task, in plain
//! strings and numbers. [`TaskDecl::validate`] turns it into a [`TaskSpec`], whose trigger is
//! parsed and whose policies are checked, reporting every problem at once.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::trigger::Trigger;

/// Shortest lock time-to-live a task may ask for; renewals every ttl/3 below this would be
/// dominated by network jitter.
pub const MIN_LOCK_TTL: Duration = Duration::from_millis(100);
/// Longest lock time-to-live a task may ask for.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(86_400);
/// Longest timeout or misfire grace, in seconds (a year).
const MAX_SECS: u64 = 365 * 86_400;
/// Lock time-to-live when a task does not set one.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);
/// How late a fire may start and still count as on time when a task does not set it.
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(1);

/// What to do with fires found in the past (after downtime, a stall or a resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MisfirePolicy {
    /// Run none of them.
    Skip,
    /// Run the latest one once (coalesce).
    #[default]
    FireOnce,
    /// Run the latest `max` of them, oldest first.
    FireAll {
        /// At most this many catch-up runs.
        max: u32,
    },
}

impl FromStr for MisfirePolicy {
    type Err = Error;

    /// `skip`, `fire_once` or `fire_all:N`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |problem: &str| Error::Policy {
            what: "misfire policy",
            value: s.to_owned(),
            problem: problem.to_owned(),
        };
        match s {
            "skip" => Ok(MisfirePolicy::Skip),
            "fire_once" => Ok(MisfirePolicy::FireOnce),
            _ => match s.strip_prefix("fire_all:").map(str::parse::<u32>) {
                Some(Ok(max)) if max >= 1 => Ok(MisfirePolicy::FireAll { max }),
                Some(Err(e)) if *e.kind() == std::num::IntErrorKind::PosOverflow => Err(bad(
                    &format!("fire_all takes a count of at most {}", u32::MAX),
                )),
                Some(_) => Err(bad("fire_all needs a count of at least 1, e.g. fire_all:3")),
                None => Err(bad("expected skip, fire_once or fire_all:N")),
            },
        }
    }
}

impl fmt::Display for MisfirePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MisfirePolicy::Skip => f.write_str("skip"),
            MisfirePolicy::FireOnce => f.write_str("fire_once"),
            MisfirePolicy::FireAll { max } => write!(f, "fire_all:{max}"),
        }
    }
}

/// What to do with a fire while the previous run of the same task is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverlapPolicy {
    /// Record the fire as `skipped_overlap`.
    #[default]
    Forbid,
    /// Run it anyway.
    Allow,
}

impl FromStr for OverlapPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "forbid" => Ok(OverlapPolicy::Forbid),
            "allow" => Ok(OverlapPolicy::Allow),
            _ => Err(Error::Policy {
                what: "overlap policy",
                value: s.to_owned(),
                problem: "expected forbid or allow".to_owned(),
            }),
        }
    }
}

impl fmt::Display for OverlapPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverlapPolicy::Forbid => "forbid",
            OverlapPolicy::Allow => "allow",
        })
    }
}

/// Where a task's trigger comes from, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerDecl {
    /// A cron expression and zone.
    Cron {
        /// The expression.
        expr: String,
        /// IANA zone name.
        timezone: String,
    },
    /// A full `trigger_json`.
    Json(String),
    /// The name of a shared trigger conf.
    Conf(String),
}

/// A task as declared, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDecl {
    /// Unique dotted name, `module.task`.
    pub name: String,
    /// Handler that runs it.
    pub handler: String,
    /// Arguments for runtime-defined handlers (`shell`, `http`, ...).
    pub handler_args: Option<serde_json::Value>,
    /// When it fires.
    pub trigger: TriggerDecl,
    /// Who to ask about it.
    pub owner: String,
    /// What it does.
    pub description: String,
    /// Whether it fires at all.
    pub enabled: bool,
    /// Whether its fires run the handler or are only recorded (shadow mode).
    pub shadow: crate::Shadow,
    /// Longest a run may take; `None` = no limit.
    pub timeout_secs: Option<u64>,
    /// Policy for fires found in the past.
    pub misfire: MisfirePolicy,
    /// How late a fire may be and still run as on time.
    pub misfire_grace_secs: u64,
    /// Policy for a fire while the previous run still runs.
    pub overlap: OverlapPolicy,
    /// Re-run a fire whose node died mid-run.
    pub recover: bool,
    /// Fire lock time-to-live in milliseconds.
    pub lock_ttl_ms: u64,
    /// Alert routes it names besides the configured matches.
    pub alert_routes: Vec<String>,
    /// The dead-man check: alert when it has had no success for this many seconds.
    pub alert_if_no_success_for_secs: Option<u64>,
    /// Where it was declared (`src/orders/cron_tasks.rs:12`, `database`), for error messages.
    pub origin: String,
}

impl TaskDecl {
    fn with_trigger(name: &str, trigger: TriggerDecl) -> Self {
        TaskDecl {
            name: name.to_owned(),
            handler: String::new(),
            handler_args: None,
            trigger,
            owner: String::new(),
            description: String::new(),
            enabled: true,
            shadow: crate::Shadow::Off,
            alert_routes: Vec::new(),
            alert_if_no_success_for_secs: None,
            timeout_secs: None,
            misfire: MisfirePolicy::default(),
            misfire_grace_secs: DEFAULT_MISFIRE_GRACE.as_secs(),
            overlap: OverlapPolicy::default(),
            recover: false,
            lock_ttl_ms: DEFAULT_LOCK_TTL.as_millis() as u64,
            origin: String::new(),
        }
    }

    /// A task on a cron expression in UTC (see [`TaskDecl::timezone`]).
    pub fn cron(name: &str, expr: &str) -> Self {
        Self::with_trigger(
            name,
            TriggerDecl::Cron {
                expr: expr.to_owned(),
                timezone: "UTC".to_owned(),
            },
        )
    }

    /// A task on a full `trigger_json`.
    pub fn trigger_json(name: &str, json: &str) -> Self {
        Self::with_trigger(name, TriggerDecl::Json(json.to_owned()))
    }

    /// A task on a shared trigger conf.
    pub fn trigger_conf(name: &str, conf: &str) -> Self {
        Self::with_trigger(name, TriggerDecl::Conf(conf.to_owned()))
    }

    /// Sets the zone of a cron trigger (no effect on other kinds).
    pub fn timezone(mut self, zone: &str) -> Self {
        if let TriggerDecl::Cron { timezone, .. } = &mut self.trigger {
            *timezone = zone.to_owned();
        }
        self
    }

    /// Sets the handler name.
    pub fn handler(mut self, handler: &str) -> Self {
        self.handler = handler.to_owned();
        self
    }

    /// Sets handler arguments.
    pub fn handler_args(mut self, args: serde_json::Value) -> Self {
        self.handler_args = Some(args);
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: &str) -> Self {
        self.owner = owner.to_owned();
        self
    }

    /// Sets the description.
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Declares the task disabled.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Sets the run timeout.
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// Sets the misfire policy.
    pub fn misfire(mut self, policy: MisfirePolicy) -> Self {
        self.misfire = policy;
        self
    }

    /// Sets the misfire grace.
    pub fn misfire_grace_secs(mut self, secs: u64) -> Self {
        self.misfire_grace_secs = secs;
        self
    }

    /// Sets the overlap policy.
    pub fn overlap(mut self, policy: OverlapPolicy) -> Self {
        self.overlap = policy;
        self
    }

    /// Also alerts through this route (a name in `[[alerts.routes]]`).
    pub fn alert_route(mut self, route: &str) -> Self {
        self.alert_routes.push(route.to_owned());
        self
    }

    /// Alerts (`silent`) when the task has had no success for `secs` seconds.
    pub fn alert_if_no_success_for_secs(mut self, secs: u64) -> Self {
        self.alert_if_no_success_for_secs = Some(secs);
        self
    }

    /// Re-run fires whose node died mid-run.
    pub fn recover(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Sets the fire lock ttl.
    pub fn lock_ttl_ms(mut self, ms: u64) -> Self {
        self.lock_ttl_ms = ms;
        self
    }

    /// Records where the task was declared.
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_owned();
        self
    }

    /// Checks every field and resolves the trigger; `conf` looks up shared trigger confs.
    /// Returns every problem found, not just the first.
    pub fn validate(
        &self,
        conf: impl Fn(&str) -> Option<Trigger>,
    ) -> std::result::Result<TaskSpec, Vec<Error>> {
        self.validate_with(|decl| match decl {
            TriggerDecl::Cron { expr, timezone } => Trigger::cron(expr, timezone)
                .map(|t| (t, None))
                .map_err(|e| format!("field `trigger`: {e}")),
            TriggerDecl::Json(json) => Trigger::from_json(json)
                .map(|t| (t, None))
                .map_err(|e| format!("field `trigger`: {e}")),
            TriggerDecl::Conf(name) => conf(name).map(|t| (t, Some(name.clone()))).ok_or_else(|| {
                format!("field `trigger_conf`: no shared trigger conf named {}; create it with `cronmesh triggers add` or fix the name", crate::quoted(name))
            }),
        })
    }

    /// Like [`TaskDecl::validate`], with a trigger already parsed from this declaration's
    /// JSON (a reader of many rows parses each distinct trigger once).
    pub fn validate_parsed(&self, trigger: Trigger) -> std::result::Result<TaskSpec, Vec<Error>> {
        self.validate_with(|_| Ok((trigger, None)))
    }

    fn validate_with(
        &self,
        resolve: impl FnOnce(&TriggerDecl) -> std::result::Result<(Trigger, Option<String>), String>,
    ) -> std::result::Result<TaskSpec, Vec<Error>> {
        let mut problems = Vec::new();
        let mut problem = |p: String| problems.push(Error::task(&self.name, p));

        let module = match validate_name(&self.name) {
            Ok(m) => m.to_owned(),
            Err(p) => {
                problem(p);
                String::new()
            }
        };
        if self.handler.trim().is_empty() {
            problem("field `handler` is empty: name the handler that runs this task".to_owned());
        }
        if let Some(t) = self.timeout_secs.filter(|t| *t > MAX_SECS) {
            problem(format!(
                "field `timeout` is {t} s, more than a year ({MAX_SECS} s)"
            ));
        }
        if self.misfire_grace_secs > MAX_SECS {
            problem(format!(
                "field `misfire_grace` is {} s, more than a year ({MAX_SECS} s)",
                self.misfire_grace_secs
            ));
        }
        if self.lock_ttl_ms > MAX_LOCK_TTL.as_millis() as u64 {
            problem(format!(
                "field `lock_ttl` is {} ms, more than a day ({} ms)",
                self.lock_ttl_ms,
                MAX_LOCK_TTL.as_millis()
            ));
        }
        if self.timeout_secs == Some(0) {
            problem("field `timeout` is 0: give a positive number of seconds or leave it unset for no limit".to_owned());
        }
        if Duration::from_millis(self.lock_ttl_ms) < MIN_LOCK_TTL {
            problem(format!(
                "field `lock_ttl` is {} ms, below the floor of {} ms",
                self.lock_ttl_ms,
                MIN_LOCK_TTL.as_millis()
            ));
        }
        if let Some(route) = self
            .alert_routes
            .iter()
            .find(|r| r.trim().is_empty() || r.len() > 100 || r.chars().any(char::is_control))
        {
            problem(format!(
                "field `alert_routes`: {} is not a route name (1 to 100 printable characters)",
                crate::quoted(route)
            ));
        }
        if let Some(secs) = self.alert_if_no_success_for_secs
            && !(60..=MAX_SECS).contains(&secs)
        {
            problem(format!(
                "field `alert_if_no_success_for` is {secs} s: give from 60 s to a year ({MAX_SECS} s)"
            ));
        }
        if let Some(args) = &self.handler_args
            && !args.is_object()
        {
            problem(format!(
                "field `handler_args` must be a JSON object, got {args}"
            ));
        }
        let trigger = resolve(&self.trigger).map_err(&mut problem).ok();

        match trigger {
            Some((trigger, trigger_conf)) if problems.is_empty() => Ok(TaskSpec {
                name: self.name.clone(),
                module,
                handler: self.handler.clone(),
                handler_args: self.handler_args.clone().map(Box::new),
                trigger,
                trigger_conf,
                owner: self.owner.clone(),
                description: self.description.clone(),
                enabled: self.enabled,
                shadow: self.shadow,
                timeout: self.timeout_secs.map(Duration::from_secs),
                misfire: self.misfire,
                misfire_grace: Duration::from_secs(self.misfire_grace_secs),
                overlap: self.overlap,
                recover: self.recover,
                lock_ttl: Duration::from_millis(self.lock_ttl_ms),
            }),
            _ => Err(problems),
        }
    }
}

/// The longest task name, in bytes (names are ASCII).
pub(crate) const MAX_NAME: usize = 200;

/// Checks a dotted task name and returns its module (everything before the last dot).
pub fn validate_name(name: &str) -> std::result::Result<&str, String> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    // The message goes after the task's name (see `Error::Task`), so it does not repeat it.
    if name.len() > MAX_NAME {
        return Err(format!("field `name`: longer than {MAX_NAME} characters"));
    }
    match name.rsplit_once('.') {
        Some((module, _)) if name.split('.').all(segment_ok) => Ok(module),
        _ => Err(format!(
            "field `name`: must be dotted `module.task` (lower-case letters, digits, _ and -; at most {MAX_NAME} characters), e.g. \"orders.reconcile\""
        )),
    }
}

/// A validated task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Unique dotted name.
    pub name: String,
    /// The part of the name before the last dot.
    pub module: String,
    /// Handler name.
    pub handler: String,
    /// Handler arguments (a JSON object) for runtime-defined handlers; boxed, as most tasks
    /// have none and a node may hold a million specs.
    pub handler_args: Option<Box<serde_json::Value>>,
    /// The resolved trigger.
    pub trigger: Trigger,
    /// The shared trigger conf it came from, if any.
    pub trigger_conf: Option<String>,
    /// Owner.
    pub owner: String,
    /// Description.
    pub description: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Shadow mode.
    pub shadow: crate::Shadow,
    /// Run timeout.
    pub timeout: Option<Duration>,
    /// Misfire policy.
    pub misfire: MisfirePolicy,
    /// Misfire grace.
    pub misfire_grace: Duration,
    /// Overlap policy.
    pub overlap: OverlapPolicy,
    /// Re-run on node death.
    pub recover: bool,
    /// Fire lock ttl.
    pub lock_ttl: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_confs(_: &str) -> Option<Trigger> {
        None
    }

    #[test]
    fn policies_parse_and_print() {
        for s in ["skip", "fire_once", "fire_all:3"] {
            assert_eq!(s.parse::<MisfirePolicy>().expect(s).to_string(), s);
        }
        for s in ["forbid", "allow"] {
            assert_eq!(s.parse::<OverlapPolicy>().expect(s).to_string(), s);
        }
        let too_many = "fire_all:99999999999999"
            .parse::<MisfirePolicy>()
            .expect_err("too large")
            .to_string();
        assert!(too_many.contains("at most"), "{too_many}");
        let err = "fire_all:0"
            .parse::<MisfirePolicy>()
            .expect_err("zero")
            .to_string();
        assert!(
            err.contains("\"fire_all:0\"") && err.contains("at least 1"),
            "{err}"
        );
        assert!("sometimes".parse::<OverlapPolicy>().is_err());
    }

    #[test]
    fn valid_decl_becomes_spec() {
        let spec = TaskDecl::cron("orders.reconcile", "0 */5 * * * *")
            .timezone("Asia/Shanghai")
            .handler("orders::reconcile")
            .owner("orders-team")
            .timeout_secs(60)
            .misfire(MisfirePolicy::FireAll { max: 2 })
            .validate(no_confs)
            .expect("valid");
        assert_eq!(spec.module, "orders");
        assert_eq!(spec.timeout, Some(Duration::from_secs(60)));
        assert_eq!(spec.lock_ttl, DEFAULT_LOCK_TTL);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = TaskDecl::cron("NoDots", "0 0 32 * *")
            .lock_ttl_ms(50)
            .timeout_secs(0)
            .validate(no_confs)
            .expect_err("invalid");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 5, "{text:#?}");
        assert!(text.iter().any(|p| p.contains("must be dotted")));
        assert!(text.iter().any(|p| p.contains("`handler` is empty")));
        assert!(text.iter().any(|p| p.contains("`timeout` is 0")));
        assert!(text.iter().any(|p| p.contains("below the floor of 100 ms")));
        assert!(text.iter().any(|p| p.contains("day-of-month 32")));
    }

    #[test]
    fn huge_values_are_refused() {
        let problems = TaskDecl::cron("a.b", "@daily")
            .handler("h")
            .timeout_secs(u64::MAX)
            .misfire_grace_secs(u64::MAX)
            .lock_ttl_ms(u64::MAX)
            .validate(no_confs)
            .expect_err("too big");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn trigger_conf_is_resolved() {
        let daily = Trigger::cron("@daily", "UTC").expect("valid");
        let lookup = |n: &str| (n == "nightly").then(|| daily.clone());
        let spec = TaskDecl::trigger_conf("a.b", "nightly")
            .handler("noop")
            .validate(lookup)
            .expect("known conf");
        assert_eq!(spec.trigger_conf.as_deref(), Some("nightly"));
        let err = TaskDecl::trigger_conf("a.b", "weekly")
            .handler("noop")
            .validate(lookup)
            .expect_err("unknown conf");
        assert!(
            err[0]
                .to_string()
                .contains("no shared trigger conf named \"weekly\"")
        );
    }
}
