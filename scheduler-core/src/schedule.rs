//! A cron expression in an IANA zone: from local wall-clock matches to UTC instants.
//!
//! This module owns the DST rules (docs/architecture.md, "Time zones and DST"):
//! - an hour field of `*` or `*/n` is interval-like: every matching instant that exists fires,
//!   so both passes of a repeated hour fire and a skipped hour fires nothing;
//! - every other expression fires once per local time it names: at the first pass of a
//!   repeated hour, and at the first instant after a gap for times the gap swallows (all the
//!   times one gap swallows coalesce into that one instant).
//!
//! Nothing here reads the clock: the base instant is always an argument.

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::cron_expr::CronExpr;
use crate::error::{Error, Result};

/// Parses an IANA zone name.
pub fn parse_zone(zone: &str) -> Result<Tz> {
    zone.parse::<Tz>().map_err(|_| Error::UnknownZone {
        zone: zone.to_owned(),
    })
}

/// A cron expression evaluated in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    expr: CronExpr,
    zone: Tz,
}

// How far past the base instant's local time the once-per-local-time search may look before
// concluding the zone data is inconsistent; a repeated hour never spans more than a day.
const MAX_OVERLAP: Duration = Duration::days(2);
// Upper bound on transitions crossed by one search (each costs a binary search).
const MAX_SEGMENTS: usize = 64;

/// The instants a search for the next fire starts from: two days around the years a cron
/// expression can name.
fn searchable_range() -> (DateTime<Utc>, DateTime<Utc>) {
    use crate::cron_expr::{MAX_YEAR, MIN_YEAR};
    let day = |year, month, day| {
        chrono::NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    };
    (
        day(MIN_YEAR - 1, 12, 30).unwrap_or(DateTime::<Utc>::MIN_UTC),
        day(MAX_YEAR + 1, 1, 2).unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

impl CronSchedule {
    /// An expression in a zone.
    pub fn new(expr: CronExpr, zone: Tz) -> Self {
        CronSchedule { expr, zone }
    }

    /// The expression.
    pub fn expr(&self) -> &CronExpr {
        &self.expr
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire strictly after `after`, or `None` when the expression has no more fires
    /// (its year field ended, or the search passed [`crate::cron_expr::MAX_YEAR`]).
    pub fn next_fire_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Fires fall in MIN_YEAR..=MAX_YEAR local time, a day at most from UTC: an instant
        // far outside is moved to the edge, so the offset arithmetic below stays in range.
        let (first, last) = searchable_range();
        if after > last {
            return None;
        }
        let after = after.max(first);
        if self.zone == Tz::UTC {
            let next = self.expr.next_after(after.naive_utc())?;
            return Some(next.and_utc());
        }
        if self.expr.is_hour_wildcard() {
            self.next_existing_instant(after)
        } else {
            self.next_named_local_time(after)
        }
    }

    /// Interval-like schedules: the first instant after `after` whose local time matches.
    ///
    /// Walks segments of constant UTC offset. Inside one, local time is UTC plus a constant,
    /// so the next local match maps straight back; if that instant lies beyond a transition,
    /// the search restarts at the transition with the new offset.
    fn next_existing_instant(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = after;
        let mut inclusive = false;
        for _ in 0..MAX_SEGMENTS {
            let offset = self.offset_at(from);
            let mut local = from.naive_utc() + offset;
            if inclusive {
                local -= Duration::seconds(1);
            }
            let candidate_local = self.expr.next_after(local)?;
            let candidate = (candidate_local - offset).and_utc();
            match self.first_offset_change(from, candidate, offset) {
                None => return Some(candidate),
                Some(change) => {
                    from = change;
                    inclusive = true;
                }
            }
        }
        None
    }

    /// Every other schedule: each matching local time maps to one instant (the first pass of
    /// a repeated time; the end of the gap for a skipped time). That map never decreases, so
    /// the answer is the first matching local time whose instant is after `after`.
    fn next_named_local_time(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let base_local = after.naive_utc() + self.offset_at(after);
        let mut local = base_local;
        loop {
            local = self.expr.next_after(local)?;
            let fire = self.first_instant_of(local);
            if fire > after {
                return Some(fire);
            }
            // Only a repeated hour can map a later local time to an earlier-or-equal instant.
            if local - base_local > MAX_OVERLAP {
                return None;
            }
        }
    }

    /// The instant a named local time fires at.
    fn first_instant_of(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => self.gap_end(local),
        }
    }

    /// The first instant whose local time is at or past `local`, which lies in a gap: the
    /// transition instant itself, the first moment after the skipped local times.
    fn gap_end(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // Offsets are within ±14 h (a day in the worst historical case), so these bracket it.
        let mut lo = (local - Duration::hours(36)).and_utc();
        let mut hi = (local + Duration::hours(36)).and_utc();
        while hi - lo > Duration::seconds(1) {
            let mid = lo + (hi - lo) / 2;
            if mid.naive_utc() + self.offset_at(mid) >= local {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        trim_to_second(hi)
    }

    /// The first instant in `(from, to]` whose offset differs from `offset`, if any.
    ///
    /// Probes a day at a time, then bisects inside the first day whose end has another
    /// offset. Comparing only the two ends would miss a pair of transitions between them
    /// (a repeated hour and its return a year apart), and with it a second pass that fires.
    fn first_offset_change(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        offset: FixedOffset,
    ) -> Option<DateTime<Utc>> {
        let mut lo = from;
        let hi = loop {
            if lo >= to {
                return None;
            }
            let probe = (lo + Duration::days(1)).min(to);
            if self.offset_at(probe) != offset {
                break probe;
            }
            lo = probe;
        };
        let mut hi = hi;
        while hi - lo > Duration::seconds(1) {
            let mid = lo + (hi - lo) / 2;
            if self.offset_at(mid) == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(trim_to_second(hi))
    }

    fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        self.zone.offset_from_utc_datetime(&t.naive_utc()).fix()
    }
}

/// Transitions happen on whole seconds; binary searches converge within one second above.
fn trim_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn sched(expr: &str, zone: &str) -> CronSchedule {
        CronSchedule::new(
            CronExpr::parse(expr).expect("valid expression"),
            parse_zone(zone).expect("valid zone"),
        )
    }

    fn fires(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
        let s = sched(expr, zone);
        let mut t = utc(after);
        (0..n)
            .map(|_| {
                t = s.next_fire_after(t).expect("a next fire");
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
            .collect()
    }

    /// All fires in `[from, to)`, by stepping the schedule.
    fn fires_between(s: &CronSchedule, from: &str, to: &str) -> Vec<DateTime<Utc>> {
        let (mut t, end) = (utc(from) - Duration::seconds(1), utc(to));
        let mut out = Vec::new();
        while let Some(n) = s.next_fire_after(t).filter(|n| *n < end) {
            out.push(n);
            t = n;
        }
        out
    }

    /// Brute force: every instant in `[from, to)` on a `step` grid whose local time matches.
    fn existing_matches(s: &CronSchedule, from: &str, to: &str, step: i64) -> Vec<DateTime<Utc>> {
        let (mut t, end) = (utc(from), utc(to));
        let mut out = Vec::new();
        while t < end {
            if s.expr().matches(t.with_timezone(&s.zone()).naive_local()) {
                out.push(t);
            }
            t += Duration::seconds(step);
        }
        out
    }

    #[test]
    fn issue_example_new_york_spring_forward() {
        assert_eq!(
            fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z"
            ]
        );
    }

    #[test]
    fn daily_fixed_time_across_both_transitions() {
        // New York: 2026-03-08 02:00 -> 03:00; 2026-11-01 02:00 -> 01:00.
        assert_eq!(
            fires("30 1 * * *", "America/New_York", "2026-10-31T00:00:00Z", 3),
            [
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z"
            ],
            "the repeated 01:30 fires at its first pass only"
        );
        // Berlin: 2026-03-29 02:00 -> 03:00; 2026-10-25 03:00 -> 02:00.
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", 3),
            [
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z"
            ]
        );
    }

    #[test]
    fn hourly_job_fires_at_every_existing_hour() {
        let s = sched("0 * * * *", "America/New_York");
        // Spring forward: 23 fires on the local day, none at 02:xx.
        let spring = fires_between(&s, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
        assert_eq!(spring.len(), 23);
        assert_eq!(
            spring,
            existing_matches(&s, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 60)
        );
        // Fall back: 25 fires, 01:00 twice (05:00Z EDT and 06:00Z EST).
        let fall = fires_between(&s, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z");
        assert_eq!(fall.len(), 25);
        assert!(
            fall.contains(&utc("2026-11-01T05:00:00Z"))
                && fall.contains(&utc("2026-11-01T06:00:00Z"))
        );
        assert_eq!(
            fall,
            existing_matches(&s, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 60)
        );
        // Berlin, same rule.
        let b = sched("0 * * * *", "Europe/Berlin");
        assert_eq!(
            fires_between(&b, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z").len(),
            25
        );
        assert_eq!(
            fires_between(&b, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z").len(),
            23
        );
    }

    #[test]
    fn every_fifteen_minutes_wildcard_hour() {
        let s = sched("*/15 * * * *", "America/New_York");
        let fall = fires_between(&s, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z");
        assert_eq!(
            fall,
            existing_matches(&s, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z", 60)
        );
        assert_eq!(fall.len(), 16, "the repeated hour fires both passes");
        let spring = fires_between(&s, "2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z");
        assert_eq!(
            spring,
            existing_matches(&s, "2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z", 60)
        );
        assert_eq!(
            spring[4],
            utc("2026-03-08T07:00:00Z"),
            "03:00 EDT follows 01:45 EST"
        );
        let berlin = sched("*/15 * * * *", "Europe/Berlin");
        let fall = fires_between(&berlin, "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z");
        assert_eq!(
            fall,
            existing_matches(&berlin, "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z", 60)
        );
        assert_eq!(fall.len(), 16);
        let spring = fires_between(&berlin, "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z");
        assert_eq!(
            spring,
            existing_matches(&berlin, "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z", 60)
        );
        assert_eq!(
            spring[4],
            utc("2026-03-29T01:00:00Z"),
            "03:00 CEST follows 01:45 CET"
        );
    }

    #[test]
    fn fifteen_minutes_in_a_named_hour_coalesce_in_the_gap() {
        // `*/15 2 * * *` on the spring-forward day: the gap swallows 02:00-02:45, fires once at 03:00.
        assert_eq!(
            fires(
                "*/15 2 * * *",
                "America/New_York",
                "2026-03-07T12:00:00Z",
                6
            ),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:00:00Z",
                "2026-03-09T06:15:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-09T06:45:00Z",
                "2026-03-10T06:00:00Z"
            ]
        );
        // Fall back in a named hour: first pass only, four fires.
        let s = sched("*/15 1 * * *", "America/New_York");
        let fall = fires_between(&s, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z");
        assert_eq!(
            fall,
            ["05:00", "05:15", "05:30", "05:45"].map(|hm| utc(&format!("2026-11-01T{hm}:00Z")))
        );
        // Berlin's repeated hour is 02:00-03:00.
        let b = sched("*/15 2 * * *", "Europe/Berlin");
        assert_eq!(
            fires_between(&b, "2026-10-24T22:00:00Z", "2026-10-25T04:00:00Z").len(),
            4
        );
        assert_eq!(
            fires("*/15 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"]
        );
    }

    #[test]
    fn base_in_second_pass_of_repeated_hour() {
        // 06:10Z is 01:10 EST, the second pass; the named-time job already fired at 05:30Z.
        assert_eq!(
            fires("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z", 1),
            ["2026-11-02T06:30:00Z"]
        );
        assert_eq!(
            fires("30 * * * *", "America/New_York", "2026-11-01T06:10:00Z", 2),
            ["2026-11-01T06:30:00Z", "2026-11-01T07:30:00Z"]
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // Lord Howe: +10:30 standard, +11 summer. 2026-10-04 02:00 -> 02:30; 2026-04-05 02:00 -> 01:30.
        assert_eq!(
            fires(
                "15 2 * * *",
                "Australia/Lord_Howe",
                "2026-10-03T00:00:00Z",
                2
            ),
            ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"],
            "02:15 is skipped on 10-04 and fires at 02:30 (+11) = 15:30Z the day before in UTC"
        );
        let s = sched("*/10 * * * *", "Australia/Lord_Howe");
        let fall = fires_between(&s, "2026-04-04T14:00:00Z", "2026-04-04T16:00:00Z");
        assert_eq!(
            fall,
            existing_matches(&s, "2026-04-04T14:00:00Z", "2026-04-04T16:00:00Z", 60)
        );
        assert_eq!(fall.len(), 12);
        let named = sched("45 1 * * *", "Australia/Lord_Howe");
        let fires = fires_between(&named, "2026-04-04T00:00:00Z", "2026-04-05T00:00:00Z");
        assert_eq!(
            fires,
            [utc("2026-04-04T14:45:00Z")],
            "01:45 repeats; first pass only"
        );
    }

    #[test]
    fn zone_where_midnight_does_not_exist() {
        // Sao Paulo 2018-11-04: 00:00 -> 01:00. A midnight job fires at 01:00 local (03:00Z).
        assert_eq!(
            fires("0 0 * * *", "America/Sao_Paulo", "2018-11-03T12:00:00Z", 2),
            ["2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"]
        );
        let hourly = sched("0 * * * *", "America/Sao_Paulo");
        let day = fires_between(&hourly, "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z");
        assert_eq!(day.len(), 23, "the local day is 23 hours long");
        assert_eq!(
            day,
            existing_matches(&hourly, "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z", 60)
        );
    }

    #[test]
    fn fire_sequences_are_strictly_increasing() {
        for (expr, zone) in [
            ("*/7 * * * * *", "America/New_York"),
            ("0 */15 1-3 * * *", "Europe/Berlin"),
            ("0 30 2 * * *", "Australia/Lord_Howe"),
            ("0 0 * * * *", "America/Sao_Paulo"),
        ] {
            let s = sched(expr, zone);
            let mut t = utc("2026-01-01T00:00:00Z");
            for _ in 0..5000 {
                let n = s.next_fire_after(t).expect("next");
                assert!(n > t, "{expr} in {zone}: {n} not after {t}");
                t = n;
            }
        }
    }

    /// A repeated hour containing hour 0 or 23, whose next match under the old offset is a
    /// year away: the second pass must still fire (two transitions lie in between).
    #[test]
    fn second_pass_found_when_the_next_match_is_far() {
        assert_eq!(
            fires(
                "30 */24 * 11 SUN#1",
                "America/Havana",
                "2025-11-02T04:31:00Z",
                1
            ),
            ["2025-11-02T05:30:00Z"]
        );
        assert_eq!(
            fires(
                "0 */23 * 4 SAT#1",
                "America/Santiago",
                "2026-04-05T02:30:00Z",
                1
            ),
            ["2026-04-05T03:00:00Z"]
        );
        assert_eq!(
            fires(
                "0 30 */24 2 11 * 2025,2027",
                "America/Havana",
                "2025-11-02T04:31:00Z",
                1
            ),
            ["2025-11-02T05:30:00Z"]
        );
    }

    #[test]
    fn unknown_zone_is_named() {
        let err = parse_zone("Mars/Olympus").expect_err("unknown");
        assert!(err.to_string().contains("\"Mars/Olympus\""));
    }
}
