//! Misfire planning: what to run when fires are found in the past.
//!
//! A pure function of the trigger, the last fire that ran, the current instant and the
//! policy. Fires late by no more than the grace are simply late and always run; older ones
//! are misfires, handled by the policy. Work is bounded by the fires near `now`, not by the
//! length of the downtime, so a node that was down for a month starts as fast as one that
//! was down for a second.

use chrono::{DateTime, Duration, Utc};

use crate::task::MisfirePolicy;
use crate::trigger::Trigger;

/// Missed fires counted exactly up to this many; beyond it the count says "at least".
pub const MAX_COUNTED_MISSES: u64 = 100_000;

/// At most this many fires run on one catch-up, late ones and kept misfires together; the
/// rest count as misfires. A long grace or `fire_all:4294967295` on a task that fires every
/// second must not make a starting node enumerate (or run) years of seconds.
pub const MAX_CATCH_UP_RUNS: usize = 1_000;

/// The outcome of [`plan_catch_up`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// Fires to run now, oldest first: late ones within grace, plus what the policy keeps.
    pub run: Vec<DateTime<Utc>>,
    /// Misfires the policy drops.
    pub skipped: SkippedFires,
    /// The first fire strictly after `now`.
    pub next: Option<DateTime<Utc>>,
}

/// Misfires that will not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkippedFires {
    /// How many (exact unless `saturated`).
    pub count: u64,
    /// True when there were more than [`MAX_COUNTED_MISSES`] and counting stopped.
    pub saturated: bool,
    /// The latest skipped fire.
    pub latest: Option<DateTime<Utc>>,
}

/// Plans the fires due in `(last_fire, now]` for a task whose last fire was `last_fire`.
///
/// With no `last_fire` the task has never fired (or its history is unknown): nothing is
/// owed, and only `next` is filled in.
pub fn plan_catch_up(
    trigger: &Trigger,
    last_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: MisfirePolicy,
    grace: std::time::Duration,
) -> CatchUp {
    let next = trigger.next_fire_after(now);
    let Some(last) = last_fire.filter(|l| *l < now) else {
        return CatchUp {
            run: Vec::new(),
            skipped: SkippedFires::default(),
            next,
        };
    };
    let grace = Duration::from_std(grace).unwrap_or(Duration::MAX);
    let grace_start = now.checked_sub_signed(grace).unwrap_or(last).max(last);

    // Late but within grace: (grace_start, now], the newest MAX_CATCH_UP_RUNS of them; older
    // ones beyond that count as misfires.
    let mut run = latest_fires(trigger, grace_start, now, MAX_CATCH_UP_RUNS);
    let grace_start = match run.first() {
        Some(oldest) if run.len() == MAX_CATCH_UP_RUNS => oldest
            .checked_sub_signed(Duration::nanoseconds(1))
            .unwrap_or(last)
            .max(last),
        _ => grace_start,
    };

    // Misfires: (last, grace_start].
    let keep = match policy {
        MisfirePolicy::Skip => 0,
        MisfirePolicy::FireOnce => 1,
        MisfirePolicy::FireAll { max } => max as usize,
    }
    .min(MAX_CATCH_UP_RUNS - run.len());
    let kept = latest_fires(trigger, last, grace_start, keep);
    let (count, saturated) = count_fires(trigger, last, grace_start);
    let dropped = count.saturating_sub(kept.len() as u64);
    let latest_dropped = if dropped == 0 {
        None
    } else if kept.is_empty() {
        latest_fires(trigger, last, grace_start, 1).first().copied()
    } else {
        // The newest dropped fire is the one just before the oldest kept fire.
        latest_fires(trigger, last, kept[0] - Duration::nanoseconds(1), 1)
            .first()
            .copied()
    };
    run.splice(0..0, kept);
    CatchUp {
        run,
        skipped: SkippedFires {
            count: dropped,
            saturated,
            latest: latest_dropped,
        },
        next,
    }
}

/// The latest `n` fires in `(after, until]`, oldest first. Searches backwards from `until`
/// in doubling windows, so the cost follows the fires found, not the span searched.
fn latest_fires(
    trigger: &Trigger,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    n: usize,
) -> Vec<DateTime<Utc>> {
    if n == 0 || after >= until {
        return Vec::new();
    }
    let mut window = Duration::seconds(1);
    loop {
        let from = until.checked_sub_signed(window).unwrap_or(after).max(after);
        let fires: Vec<_> = trigger.fires_between(from, until).collect();
        if fires.len() >= n || from == after {
            let skip = fires.len().saturating_sub(n);
            return fires[skip..].to_vec();
        }
        window = window.checked_mul(2).unwrap_or(Duration::MAX);
    }
}

fn count_fires(trigger: &Trigger, after: DateTime<Utc>, until: DateTime<Utc>) -> (u64, bool) {
    let mut count = 0;
    for _ in trigger.fires_between(after, until) {
        if count == MAX_COUNTED_MISSES {
            return (count, true);
        }
        count += 1;
    }
    (count, false)
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn every_minute() -> Trigger {
        Trigger::cron("* * * * *", "UTC").expect("valid")
    }

    const GRACE: StdDuration = StdDuration::from_secs(1);

    #[test]
    fn fire_once_coalesces_to_the_latest_miss() {
        let plan = plan_catch_up(
            &every_minute(),
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-01-01T00:10:30Z"),
            MisfirePolicy::FireOnce,
            GRACE,
        );
        assert_eq!(plan.run, [utc("2026-01-01T00:10:00Z")]);
        assert_eq!(plan.skipped.count, 9);
        assert_eq!(plan.skipped.latest, Some(utc("2026-01-01T00:09:00Z")));
        assert_eq!(plan.next, Some(utc("2026-01-01T00:11:00Z")));
    }

    #[test]
    fn skip_runs_nothing() {
        let plan = plan_catch_up(
            &every_minute(),
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-01-01T00:10:30Z"),
            MisfirePolicy::Skip,
            GRACE,
        );
        assert!(plan.run.is_empty());
        assert_eq!(plan.skipped.count, 10);
        assert_eq!(plan.skipped.latest, Some(utc("2026-01-01T00:10:00Z")));
    }

    #[test]
    fn fire_all_runs_the_latest_max_oldest_first() {
        let plan = plan_catch_up(
            &every_minute(),
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-01-01T00:10:30Z"),
            MisfirePolicy::FireAll { max: 2 },
            GRACE,
        );
        assert_eq!(
            plan.run,
            [utc("2026-01-01T00:09:00Z"), utc("2026-01-01T00:10:00Z")]
        );
        assert_eq!(plan.skipped.count, 8);
        assert_eq!(plan.skipped.latest, Some(utc("2026-01-01T00:08:00Z")));
        let few = plan_catch_up(
            &every_minute(),
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-01-01T00:02:30Z"),
            MisfirePolicy::FireAll { max: 5 },
            GRACE,
        );
        assert_eq!(few.run.len(), 2);
        assert_eq!(few.skipped.count, 0);
    }

    #[test]
    fn fires_within_grace_run_whatever_the_policy() {
        let plan = plan_catch_up(
            &every_minute(),
            Some(utc("2026-01-01T00:08:00Z")),
            utc("2026-01-01T00:10:20Z"),
            MisfirePolicy::Skip,
            StdDuration::from_secs(30),
        );
        assert_eq!(plan.run, [utc("2026-01-01T00:10:00Z")]);
        assert_eq!(plan.skipped.count, 1);
    }

    #[test]
    fn nothing_owed_without_history() {
        let plan = plan_catch_up(
            &every_minute(),
            None,
            utc("2026-01-01T00:10:30Z"),
            MisfirePolicy::FireAll { max: 3 },
            GRACE,
        );
        assert!(plan.run.is_empty());
        assert_eq!(plan.next, Some(utc("2026-01-01T00:11:00Z")));
    }

    #[test]
    fn long_downtime_is_bounded() {
        let every_second = Trigger::cron("* * * * * *", "UTC").expect("valid");
        let plan = plan_catch_up(
            &every_second,
            Some(utc("2026-01-01T00:00:00Z")),
            utc("2026-03-01T00:00:00Z"),
            MisfirePolicy::FireOnce,
            GRACE,
        );
        assert_eq!(
            plan.run.len(),
            2,
            "the one within grace plus the coalesced one"
        );
        assert!(plan.skipped.saturated);
        assert_eq!(plan.skipped.count, MAX_COUNTED_MISSES - 1);
    }

    #[test]
    fn a_huge_grace_or_fire_all_runs_at_most_the_cap() {
        let every_second = Trigger::cron("* * * * * *", "UTC").expect("valid");
        let now = utc("2026-03-01T00:00:00Z");
        // Ten years of grace: the newest MAX_CATCH_UP_RUNS run, the rest are misfires.
        let plan = plan_catch_up(
            &every_second,
            Some(utc("2016-03-01T00:00:00Z")),
            now,
            MisfirePolicy::Skip,
            StdDuration::from_secs(10 * 365 * 86_400),
        );
        assert_eq!(plan.run.len(), MAX_CATCH_UP_RUNS);
        assert_eq!(plan.run.last(), Some(&now));
        assert!(plan.skipped.saturated);
        // fire_all with the largest count: the cap again, the newest fires.
        let plan = plan_catch_up(
            &every_second,
            Some(utc("2026-02-28T00:00:00Z")),
            now,
            MisfirePolicy::FireAll { max: u32::MAX },
            StdDuration::ZERO,
        );
        assert_eq!(plan.run.len(), MAX_CATCH_UP_RUNS);
        assert_eq!(plan.run.last(), Some(&now));
        assert_eq!(
            plan.skipped.count,
            86_400 - MAX_CATCH_UP_RUNS as u64,
            "the rest of the day is recorded as skipped"
        );
    }
}
