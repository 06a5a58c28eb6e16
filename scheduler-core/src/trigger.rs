//! Triggers: when a task fires. Three kinds, one JSON form (`trigger_json`).
//!
//! ```json
//! {"type":"cron","expr":"0 30 9 * * MON-FRI","timezone":"Asia/Shanghai","start_at":null,"end_at":null}
//! {"type":"date","run_at":"2026-12-01T08:00:00Z"}
//! {"type":"interval","every_secs":90,"anchor":"2026-01-01T00:00:00Z"}
//! ```
//!
//! The JSON is read into a raw serde form and validated into [`Trigger`] in one step, so a
//! `Trigger` value is always usable; serializing it and parsing again gives the same value.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::cron_expr::CronExpr;
use crate::error::{Error, Result};
use crate::schedule::{CronSchedule, parse_zone};

/// When a task fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A calendar schedule in a zone, optionally bounded.
    Cron {
        /// Expression and zone.
        schedule: CronSchedule,
        /// No fire before this instant.
        start_at: Option<DateTime<Utc>>,
        /// No fire after this instant.
        end_at: Option<DateTime<Utc>>,
    },
    /// Fires once.
    Date {
        /// The one fire.
        run_at: DateTime<Utc>,
    },
    /// Fires at `anchor + k * every` for every integer `k`.
    Interval {
        /// The period in seconds (at least 1).
        every_secs: u64,
        /// A fixed instant on the grid, so every node computes the same fires.
        anchor: DateTime<Utc>,
    },
}

/// The serde shape of `trigger_json` for writing; reading goes through [`Trigger::from_json`],
/// which deserializes the variant's fields separately so errors can name the field.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum TriggerJson {
    Cron(CronJson),
    Date(DateJson),
    Interval(IntervalJson),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CronJson {
    expr: String,
    #[serde(default = "utc_name")]
    timezone: String,
    #[serde(default)]
    start_at: Option<String>,
    #[serde(default)]
    end_at: Option<String>,
    /// `"any"` (the default: Vixie cron's either-day rule) or `"all"` (both day fields must
    /// match, as in APScheduler). Written only when `"all"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day_match: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DateJson {
    run_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalJson {
    every_secs: u64,
    #[serde(default)]
    anchor: Option<String>,
}

/// Longest interval accepted: a hundred years.
const MAX_EVERY_SECS: u64 = 100 * 365 * 86_400;

/// Deserializes one variant's fields; an error names the field it is about.
fn variant<T: serde::de::DeserializeOwned>(fields: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(fields).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::trigger_json(inner.to_string())
        } else {
            Error::trigger_json(format!("field `{path}`: {inner}"))
        }
    })
}

fn utc_name() -> String {
    "UTC".to_owned()
}

impl Trigger {
    /// A cron trigger from an expression and an IANA zone name.
    pub fn cron(expr: &str, timezone: &str) -> Result<Self> {
        Ok(Trigger::Cron {
            schedule: CronSchedule::new(CronExpr::parse(expr)?, parse_zone(timezone)?),
            start_at: None,
            end_at: None,
        })
    }

    /// Parses `trigger_json`. Errors name the field and the value.
    pub fn from_json(json: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::trigger_json(e.to_string()))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(Error::trigger_json(format!(
                "expected a JSON object such as {{\"type\":\"cron\",\"expr\":\"0 * * * *\"}}, got {value}"
            )));
        };
        let kind = match fields.remove("type") {
            Some(serde_json::Value::String(kind)) => kind,
            Some(other) => {
                return Err(Error::trigger_json(format!(
                    "field `type`: {other} is not one of \"cron\", \"date\", \"interval\""
                )));
            }
            None => {
                return Err(Error::trigger_json(
                    "missing field `type`: expected \"cron\", \"date\" or \"interval\"",
                ));
            }
        };
        let fields = serde_json::Value::Object(fields);
        let raw = match kind.as_str() {
            "cron" => TriggerJson::Cron(variant(fields)?),
            "date" => TriggerJson::Date(variant(fields)?),
            "interval" => TriggerJson::Interval(variant(fields)?),
            other => {
                return Err(Error::trigger_json(format!(
                    "field `type`: {other:?} is not one of \"cron\", \"date\", \"interval\""
                )));
            }
        };
        Trigger::try_from(raw)
    }

    /// The canonical JSON form (every field present, instants in RFC 3339 UTC).
    pub fn to_json(&self) -> String {
        let raw = TriggerJson::from(self);
        // Serializing plain strings and integers into a String cannot fail.
        serde_json::to_string(&raw).unwrap_or_default()
    }

    /// The first fire strictly after `after`, or `None` when there are no more.
    pub fn next_fire_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Cron {
                schedule,
                start_at,
                end_at,
            } => {
                let from = match start_at {
                    // First fire at or after start_at.
                    Some(s) if after < *s => s
                        .checked_sub_signed(chrono::Duration::nanoseconds(1))
                        .unwrap_or(*s),
                    _ => after,
                };
                schedule
                    .next_fire_after(from)
                    .filter(|t| end_at.is_none_or(|end| *t <= end))
            }
            Trigger::Date { run_at } => (*run_at > after).then_some(*run_at),
            Trigger::Interval { every_secs, anchor } => {
                let every_ms = i64::try_from(*every_secs).ok()?.checked_mul(1000)?;
                let since_anchor = after.timestamp_millis() - anchor.timestamp_millis();
                let k = since_anchor.div_euclid(every_ms) + 1;
                let ms = anchor
                    .timestamp_millis()
                    .checked_add(k.checked_mul(every_ms)?)?;
                DateTime::from_timestamp_millis(ms)
            }
        }
    }

    /// Fires in `(after, until]`, in order.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let next = self.next_fire_after(cursor).filter(|t| *t <= until)?;
            cursor = next;
            Some(next)
        })
    }
}

impl TryFrom<TriggerJson> for Trigger {
    type Error = Error;

    fn try_from(raw: TriggerJson) -> Result<Self> {
        match raw {
            TriggerJson::Cron(CronJson {
                expr,
                timezone,
                start_at,
                end_at,
                day_match,
            }) => {
                let parsed = CronExpr::parse(&expr)?;
                let parsed = match day_match.as_deref() {
                    None | Some("any") => parsed,
                    Some("all") => parsed.with_all_days()?,
                    Some(other) => {
                        return Err(Error::trigger_json(format!(
                            "field `day_match`: {other:?} is not \"any\" (either day field matches, as in cron) or \"all\" (both must)"
                        )));
                    }
                };
                let schedule = CronSchedule::new(parsed, parse_zone(&timezone)?);
                let start_at = start_at
                    .map(|s| parse_instant("start_at", &s))
                    .transpose()?;
                let end_at = end_at.map(|s| parse_instant("end_at", &s)).transpose()?;
                if let (Some(s), Some(e)) = (start_at, end_at)
                    && e < s
                {
                    return Err(Error::trigger_json(format!(
                        "field `end_at` ({}) is before `start_at` ({})",
                        rfc3339(e),
                        rfc3339(s)
                    )));
                }
                Ok(Trigger::Cron {
                    schedule,
                    start_at,
                    end_at,
                })
            }
            TriggerJson::Date(DateJson { run_at }) => Ok(Trigger::Date {
                run_at: parse_instant("run_at", &run_at)?,
            }),
            TriggerJson::Interval(IntervalJson { every_secs, anchor }) => {
                if every_secs > MAX_EVERY_SECS {
                    return Err(Error::trigger_json(format!(
                        "field `every_secs`: {every_secs} is more than 100 years ({MAX_EVERY_SECS} s)"
                    )));
                }
                if every_secs == 0 {
                    return Err(Error::trigger_json(
                        "field `every_secs` is 0: an interval must be at least 1 second",
                    ));
                }
                let Some(anchor) = anchor else {
                    return Err(Error::trigger_json(
                        "field `anchor` is missing: an interval without an anchor would fire at times that depend on when each node started, so nodes would disagree and a fire could run twice or never; add an \"anchor\" (e.g. \"2026-01-01T00:00:00Z\") or use a cron expression",
                    ));
                };
                Ok(Trigger::Interval {
                    every_secs,
                    anchor: parse_instant("anchor", &anchor)?,
                })
            }
        }
    }
}

impl From<&Trigger> for TriggerJson {
    fn from(t: &Trigger) -> Self {
        match t {
            Trigger::Cron {
                schedule,
                start_at,
                end_at,
            } => TriggerJson::Cron(CronJson {
                expr: schedule.expr().as_str().to_owned(),
                timezone: schedule.zone().name().to_owned(),
                start_at: start_at.map(rfc3339),
                end_at: end_at.map(rfc3339),
                day_match: schedule.expr().all_days().then(|| "all".to_owned()),
            }),
            Trigger::Date { run_at } => TriggerJson::Date(DateJson {
                run_at: rfc3339(*run_at),
            }),
            Trigger::Interval { every_secs, anchor } => TriggerJson::Interval(IntervalJson {
                every_secs: *every_secs,
                anchor: Some(rfc3339(*anchor)),
            }),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Cron { schedule, .. } => {
                write!(f, "cron \"{}\" {}", schedule.expr(), schedule.zone().name())
            }
            Trigger::Date { run_at } => write!(f, "once at {}", rfc3339(*run_at)),
            Trigger::Interval { every_secs, anchor } => {
                write!(f, "every {every_secs}s from {}", rfc3339(*anchor))
            }
        }
    }
}

/// RFC 3339 in UTC with a `Z`, sub-second digits only when present.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            Error::trigger_json(format!(
                "field `{field}`: {value:?} is not an RFC 3339 instant such as \"2026-12-01T08:00:00Z\" ({e})"
            ))
        })?;
    // Fires are identified by their millisecond; finer instants would be silently rounded.
    if t.timestamp_subsec_nanos() % 1_000_000 != 0 {
        return Err(Error::trigger_json(format!(
            "field `{field}`: {value:?} is more precise than a millisecond"
        )));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn round_trip(json: &str) -> Trigger {
        let t = Trigger::from_json(json).expect("valid trigger");
        let again = Trigger::from_json(&t.to_json()).expect("canonical JSON parses");
        assert_eq!(t, again);
        assert_eq!(t.to_json(), again.to_json());
        t
    }

    #[test]
    fn json_round_trips_for_every_kind() {
        let cron = round_trip(
            r#"{"type":"cron","expr":"0 30 9 * * MON-FRI","timezone":"Asia/Shanghai","start_at":null,"end_at":null}"#,
        );
        assert_eq!(
            cron.to_json(),
            r#"{"type":"cron","expr":"0 30 9 * * MON-FRI","timezone":"Asia/Shanghai","start_at":null,"end_at":null}"#
        );
        round_trip(
            r#"{"type":"cron","expr":"@daily","timezone":"Europe/Berlin","start_at":"2026-01-01T00:00:00Z","end_at":"2026-02-01T00:00:00+01:00"}"#,
        );
        let date = round_trip(r#"{"type":"date","run_at":"2026-12-01T08:00:00Z"}"#);
        assert_eq!(
            date.to_json(),
            r#"{"type":"date","run_at":"2026-12-01T08:00:00Z"}"#
        );
        let interval =
            round_trip(r#"{"type":"interval","every_secs":90,"anchor":"2026-01-01T00:00:00Z"}"#);
        assert_eq!(
            interval.to_json(),
            r#"{"type":"interval","every_secs":90,"anchor":"2026-01-01T00:00:00Z"}"#
        );
        // Zone defaults to UTC and is then written out.
        let t = round_trip(r#"{"type":"cron","expr":"* * * * *"}"#);
        assert!(t.to_json().contains(r#""timezone":"UTC""#));
    }

    #[test]
    fn interval_without_anchor_is_rejected_with_the_reason() {
        let err = Trigger::from_json(r#"{"type":"interval","every_secs":60}"#)
            .expect_err("no anchor")
            .to_string();
        assert!(err.contains("anchor"), "{err}");
        assert!(err.contains("nodes would disagree"), "{err}");
        assert!(err.contains("cron expression"), "{err}");
    }

    #[test]
    fn bad_json_names_the_field() {
        let cases = [
            (
                r#"{"type":"cron","expr":"0 0 32 * *"}"#,
                "day-of-month 32 is out of range 1-31",
            ),
            (
                r#"{"type":"cron","expr":"@daily","timezone":"Mars/Base"}"#,
                "\"Mars/Base\"",
            ),
            (
                r#"{"type":"cron","expr":"@daily","color":"red"}"#,
                "unknown field `color`",
            ),
            (r#"{"type":"weekly"}"#, "field `type`"),
            (r#"{"expr":"@daily"}"#, "missing field `type`"),
            (
                r#"{"type":"date","run_at":"tomorrow"}"#,
                "field `run_at`: \"tomorrow\"",
            ),
            (r#"{"type":"date"}"#, "missing field `run_at`"),
            (
                r#"{"type":"interval","every_secs":0,"anchor":"2026-01-01T00:00:00Z"}"#,
                "every_secs",
            ),
            (
                r#"{"type":"interval","every_secs":-5,"anchor":"2026-01-01T00:00:00Z"}"#,
                "-5",
            ),
            (
                r#"{"type":"cron","expr":"@daily","start_at":"2026-02-01T00:00:00Z","end_at":"2026-01-01T00:00:00Z"}"#,
                "is before `start_at`",
            ),
            ("not json", "expected"),
        ];
        for (json, expected) in cases {
            let err = Trigger::from_json(json).expect_err(json).to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn interval_fires_on_the_anchor_grid() {
        let t = Trigger::from_json(
            r#"{"type":"interval","every_secs":90,"anchor":"2026-01-01T00:00:00Z"}"#,
        )
        .expect("valid");
        assert_eq!(
            t.next_fire_after(utc("2026-01-01T00:00:00Z")),
            Some(utc("2026-01-01T00:01:30Z"))
        );
        assert_eq!(
            t.next_fire_after(utc("2026-01-01T00:01:29.999Z")),
            Some(utc("2026-01-01T00:01:30Z"))
        );
        // Before the anchor the grid extends backwards.
        assert_eq!(
            t.next_fire_after(utc("2025-12-31T23:58:00Z")),
            Some(utc("2025-12-31T23:58:30Z"))
        );
        assert_eq!(
            t.next_fire_after(utc("2025-12-31T23:59:00Z")),
            Some(utc("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn date_fires_once() {
        let t = Trigger::from_json(r#"{"type":"date","run_at":"2026-12-01T08:00:00Z"}"#)
            .expect("valid");
        assert_eq!(
            t.next_fire_after(utc("2026-11-01T00:00:00Z")),
            Some(utc("2026-12-01T08:00:00Z"))
        );
        assert_eq!(t.next_fire_after(utc("2026-12-01T08:00:00Z")), None);
    }

    #[test]
    fn cron_bounds_are_inclusive() {
        let t = Trigger::from_json(
            r#"{"type":"cron","expr":"@daily","start_at":"2026-01-03T00:00:00Z","end_at":"2026-01-05T00:00:00Z"}"#,
        )
        .expect("valid");
        let fires: Vec<_> = t
            .fires_between(utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"))
            .collect();
        assert_eq!(
            fires,
            [
                utc("2026-01-03T00:00:00Z"),
                utc("2026-01-04T00:00:00Z"),
                utc("2026-01-05T00:00:00Z")
            ]
        );
    }
}
