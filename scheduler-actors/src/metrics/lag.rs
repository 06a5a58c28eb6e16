//! How far behind its schedule the node is, and since when: what an operator needs to see
//! when a node is given more fires than it can start on time.
//!
//! Executors report each scheduled fire that came up late ([`Lag::observe`]); the scheduler's
//! once-a-second tick ([`Lag::tick`]) ends an episode that has had no late fire for
//! [`CAUGHT_UP_AFTER`]. The node logs one line when it falls behind, one every
//! [`REPORT_EVERY`] while it stays behind, and one when it has caught up. Reporting only:
//! whether a late fire still runs is the executor's decision (its misfire grace).

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A scheduled fire this late at its start (or at the step where it was given up) counts as
/// the node being behind its schedule.
pub(crate) const BEHIND_AFTER: Duration = Duration::from_millis(500);
/// An episode ends after this long without a late fire.
const CAUGHT_UP_AFTER: Duration = Duration::from_secs(5);
/// While behind, a log line this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// One stretch of being behind.
#[derive(Debug, Clone, Copy)]
struct Episode {
    since: DateTime<Utc>,
    last_late_at: DateTime<Utc>,
    /// The latest late fire's lateness.
    behind: Duration,
    /// The worst lateness in the episode.
    worst: Duration,
    /// Fires given up (recorded `misfired`) in the episode.
    shed: u64,
    reported_at: DateTime<Utc>,
}

/// What [`Lag`] shows in the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LagSnapshot {
    /// How late the latest late fire was, in milliseconds (0 once caught up).
    pub(crate) behind_ms: u64,
    /// When the node fell behind (`None` while it keeps up).
    pub(crate) behind_since: Option<DateTime<Utc>>,
    /// Fires given up because they came up later than their misfire grace, ever.
    pub(crate) shed_total: u64,
}

/// The node's lag (see the module's docs).
#[derive(Debug, Default)]
pub(crate) struct Lag {
    state: Mutex<(Option<Episode>, u64)>,
}

impl Lag {
    /// A scheduled fire came up `late` at `now`; `shed` when it was given up for it.
    pub(crate) fn observe(&self, late: Duration, shed: bool, node: &str, now: DateTime<Utc>) {
        if late < BEHIND_AFTER && !shed {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (episode, shed_total) = &mut *state;
        *shed_total += u64::from(shed);
        match episode {
            None => {
                *episode = Some(Episode {
                    since: now,
                    last_late_at: now,
                    behind: late,
                    worst: late,
                    shed: u64::from(shed),
                    reported_at: now,
                });
                tracing::warn!(target: "cron_task", node, behind_ms = late.as_millis() as u64,
                    since = %scheduler_core::rfc3339(now),
                    "node is behind its schedule: fires start late (more fires than it can run on time?)");
            }
            Some(e) => {
                e.last_late_at = now;
                e.behind = late;
                e.worst = e.worst.max(late);
                e.shed += u64::from(shed);
                if (now - e.reported_at).to_std().unwrap_or_default() >= REPORT_EVERY {
                    e.reported_at = now;
                    tracing::warn!(target: "cron_task", node, behind_ms = late.as_millis() as u64,
                        worst_ms = e.worst.as_millis() as u64, fires_not_run = e.shed,
                        since = %scheduler_core::rfc3339(e.since),
                        "node still behind its schedule");
                }
            }
        }
    }

    /// Ends the episode once no fire has been late for a while.
    pub(crate) fn tick(&self, node: &str, now: DateTime<Utc>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(e) = state.0 else { return };
        if (now - e.last_late_at).to_std().unwrap_or_default() >= CAUGHT_UP_AFTER {
            state.0 = None;
            let behind_for = (e.last_late_at - e.since).to_std().unwrap_or_default();
            tracing::info!(target: "cron_task", node, behind_for_s = behind_for.as_secs(),
                worst_ms = e.worst.as_millis() as u64, fires_not_run = e.shed,
                since = %scheduler_core::rfc3339(e.since),
                "node caught up with its schedule");
        }
    }

    /// What the metrics show.
    pub(crate) fn snapshot(&self) -> LagSnapshot {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        LagSnapshot {
            behind_ms: state.0.map_or(0, |e| e.behind.as_millis() as u64),
            behind_since: state.0.map(|e| e.since),
            shed_total: state.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap_or_default()
    }

    #[test]
    fn an_episode_starts_with_a_late_fire_and_ends_after_a_quiet_while() {
        let lag = Lag::default();
        lag.observe(Duration::from_millis(3), false, "n", at(0));
        assert_eq!(
            lag.snapshot(),
            LagSnapshot::default(),
            "on time is not behind"
        );
        lag.observe(Duration::from_millis(800), false, "n", at(1_000));
        lag.observe(Duration::from_millis(1_500), true, "n", at(2_000));
        let snap = lag.snapshot();
        assert_eq!(snap.behind_ms, 1_500);
        assert_eq!(snap.behind_since, Some(at(1_000)));
        assert_eq!(snap.shed_total, 1);
        // Not yet quiet long enough.
        lag.tick("n", at(6_000));
        assert_eq!(lag.snapshot().behind_since, Some(at(1_000)));
        lag.tick("n", at(7_000));
        let snap = lag.snapshot();
        assert_eq!((snap.behind_ms, snap.behind_since), (0, None));
        assert_eq!(snap.shed_total, 1, "the count of fires given up stays");
    }
}
