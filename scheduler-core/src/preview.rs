//! The next fires of a trigger as a person checks them: each in UTC and in the trigger's
//! zone, with a note where daylight saving time moved it (a local time that does not exist)
//! or where a local time happens twice.

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;

use crate::trigger::{Trigger, rfc3339};

/// One fire of a preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewFire {
    /// The instant, RFC 3339 UTC.
    pub utc: String,
    /// The same instant in the trigger's zone, RFC 3339 with its offset.
    pub local: String,
    /// What DST did to this fire, if anything.
    pub note: Option<String>,
}

/// `02:30`, or `02:30:15` when the seconds are not zero.
fn clock(t: chrono::NaiveTime) -> String {
    if chrono::Timelike::second(&t) == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

/// The first `count` fires after `after`, with DST notes for cron triggers.
pub fn preview(trigger: &Trigger, after: DateTime<Utc>, count: usize) -> Vec<PreviewFire> {
    let (zone, expr) = match trigger {
        Trigger::Cron { schedule, .. } => (schedule.zone(), Some(schedule.expr())),
        _ => (Tz::UTC, None),
    };
    trigger
        .fires_between(after, DateTime::<Utc>::MAX_UTC)
        .take(count)
        .map(|fire| {
            let local = fire.with_timezone(&zone);
            let naive = local.naive_local();
            let note = expr.and_then(|expr| {
                if !expr.matches(naive) {
                    // The local time the expression names does not exist that day: name it
                    // (the latest matching time before the fire, which is in the gap).
                    let scheduled = (1..=4 * 3600)
                        .map(|s| naive - chrono::Duration::seconds(s))
                        .find(|t| expr.matches(*t))
                        .map(|t| clock(t.time()))
                        .unwrap_or_else(|| "the scheduled local time".to_owned());
                    Some(format!(
                        "{scheduled} does not exist on {} (clocks go forward); fires at {} {}",
                        naive.date(),
                        clock(naive.time()),
                        local.format("%Z")
                    ))
                } else if let LocalResult::Ambiguous(first, _) = zone.from_local_datetime(&naive) {
                    Some(if first == local {
                        format!(
                            "{} happens twice on {} (clocks go back); this is the first",
                            naive.time(),
                            naive.date()
                        )
                    } else {
                        format!(
                            "{} happens twice on {} (clocks go back); this is the second",
                            naive.time(),
                            naive.date()
                        )
                    })
                } else {
                    None
                }
            });
            PreviewFire {
                utc: rfc3339(fire),
                local: local.to_rfc3339(),
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn dst_moves_and_doubles_are_noted() {
        let daily = Trigger::cron("30 2 * * *", "America/New_York").expect("valid");
        let fires = preview(&daily, at("2026-03-06T12:00:00Z"), 3);
        assert_eq!(fires[0].note, None, "{fires:?}");
        assert_eq!(fires[2].note, None, "{fires:?}");
        assert_eq!(fires[2].utc, "2026-03-09T06:30:00Z");
        // 2026-03-08 02:30 does not exist: the fire moved to the end of the gap.
        assert_eq!(fires[1].utc, "2026-03-08T07:00:00Z");
        let note = fires[1].note.clone().unwrap_or_default();
        assert_eq!(
            note,
            "02:30 does not exist on 2026-03-08 (clocks go forward); fires at 03:00 EDT"
        );

        let hourly = Trigger::cron("30 * * * *", "America/New_York").expect("valid");
        let fires = preview(&hourly, at("2026-11-01T05:00:00Z"), 2);
        let notes: Vec<String> = fires.iter().filter_map(|f| f.note.clone()).collect();
        assert_eq!(notes.len(), 2, "{fires:?}");
        assert!(notes[0].contains("this is the first") && notes[1].contains("this is the second"));
        assert_eq!(fires[0].local, "2026-11-01T01:30:00-04:00");
        assert_eq!(fires[1].local, "2026-11-01T01:30:00-05:00");
    }
}
