//! Fires given up while the node is behind its schedule, per task, written as one row for a
//! run of them (pure: no actor, no clock of its own).
//!
//! Under overload a node gives up thousands of fires a second. A `misfired` row for each
//! costs the database as much as a claim, so the rows of the fires given up would take the
//! place of the runs that are still possible, and a full write buffer would lose records. A
//! task's fires given up one after another are an *episode*: one row, at the episode's last
//! fire, with `fires` = how many and `error` saying from when. An episode is written once it
//! is [`EPISODE`] old (so a row appears within about that long), or at shutdown.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use entity::task_run;

/// How long an episode gathers fires before its row is written.
pub(super) const EPISODE: Duration = Duration::from_secs(5);

/// The row waiting for a task's episode, and how many fires it stands for.
struct Episode {
    /// Tells this episode apart from a later one of the same task in `order`.
    id: u64,
    first_ms: i64,
    /// The latest fire's own row (its key and its reason become the episode's).
    last: task_run::Model,
    count: u32,
}

/// The open episodes, oldest first.
#[derive(Default)]
pub(super) struct PendingSheds {
    episodes: HashMap<String, Episode>,
    /// (opened, task, episode id), in the order opened; entries of episodes already written
    /// are skipped when they come up.
    order: VecDeque<(Instant, String, u64)>,
    next_id: u64,
}

impl PendingSheds {
    /// Adds a given-up fire (its own `misfired` row) to its task's episode.
    pub(super) fn note(&mut self, row: task_run::Model, now: Instant) {
        if let Some(episode) = self.episodes.get_mut(&row.task_name) {
            episode.count = episode.count.saturating_add(1);
            episode.first_ms = episode.first_ms.min(row.fire_ts_ms);
            if row.fire_ts_ms > episode.last.fire_ts_ms {
                episode.last = row;
            }
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.order.push_back((now, row.task_name.clone(), id));
        self.episodes.insert(
            row.task_name.clone(),
            Episode {
                id,
                first_ms: row.fire_ts_ms,
                last: row,
                count: 1,
            },
        );
    }

    /// Rows of the episodes [`EPISODE`] old at `now` (every one with `all`), oldest first,
    /// `room` at most; the rest stay open and keep gathering.
    pub(super) fn take_due(
        &mut self,
        now: Instant,
        all: bool,
        room: usize,
    ) -> Vec<task_run::Model> {
        let mut rows = Vec::new();
        while rows.len() < room {
            let Some((opened, task, id)) = self.order.front() else {
                break;
            };
            if !all && now.duration_since(*opened) < EPISODE {
                break;
            }
            let current = self.episodes.get(task).is_some_and(|e| e.id == *id);
            if current && let Some(episode) = self.episodes.remove(task) {
                rows.push(row_of(episode));
            }
            self.order.pop_front();
        }
        rows
    }

    /// Rows waiting (one per open episode).
    pub(super) fn len(&self) -> usize {
        self.episodes.len()
    }
}

/// The episode's row: the last fire's, standing for all of them.
fn row_of(episode: Episode) -> task_run::Model {
    let Episode {
        first_ms,
        mut last,
        count,
        ..
    } = episode;
    if count > 1 {
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(scheduler_core::rfc3339)
                .unwrap_or_default()
        };
        let reason = last
            .error
            .as_deref()
            .map(|e| e.strip_prefix("not run: ").unwrap_or(e))
            .unwrap_or("the node was behind its schedule");
        last.error = Some(format!(
            "not run: {count} fires of this task from {} to {} were given up here, \
             one after another; at the last, {reason}",
            at(first_ms),
            at(last.fire_ts_ms)
        ));
        last.fires = i32::try_from(count).unwrap_or(i32::MAX);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::task_run::RunStatus;

    fn shed(task: &str, fire_ms: i64) -> task_run::Model {
        store::not_run_row(
            task,
            fire_ms,
            "n1",
            RunStatus::Misfired,
            format!("not run: the node was {} ms behind", fire_ms / 1000),
            chrono::Utc::now(),
        )
    }

    #[test]
    fn a_tasks_fires_given_up_in_a_row_are_one_row_that_counts_them() {
        let t0 = Instant::now();
        let mut sheds = PendingSheds::default();
        sheds.note(shed("a", 2_000), t0);
        sheds.note(shed("b", 2_000), t0);
        sheds.note(shed("a", 4_000), t0 + Duration::from_secs(1));
        sheds.note(shed("a", 3_000), t0 + Duration::from_secs(2));
        assert_eq!(sheds.len(), 2);
        assert!(
            sheds
                .take_due(t0 + Duration::from_secs(4), false, 10)
                .is_empty()
        );

        let rows = sheds.take_due(t0 + EPISODE, false, 10);
        assert_eq!(rows.len(), 2);
        let a = rows.iter().find(|r| r.task_name == "a").expect("a's row");
        assert_eq!((a.fire_ts_ms, a.fires), (4_000, 3));
        let why = a.error.as_deref().unwrap_or_default();
        assert!(
            why.starts_with(
                "not run: 3 fires of this task from 1970-01-01T00:00:02Z to 1970-01-01T00:00:04Z"
            ),
            "{why}"
        );
        assert!(
            why.ends_with("at the last, the node was 4 ms behind"),
            "{why}"
        );
        let b = rows.iter().find(|r| r.task_name == "b").expect("b's row");
        assert_eq!(b.fires, 1);
        assert_eq!(
            b.error.as_deref(),
            Some("not run: the node was 2 ms behind")
        );
        assert_eq!(sheds.len(), 0);
    }

    #[test]
    fn a_new_episode_waits_its_own_time_and_room_and_shutdown_are_respected() {
        let t0 = Instant::now();
        let mut sheds = PendingSheds::default();
        sheds.note(shed("a", 1_000), t0);
        assert_eq!(sheds.take_due(t0 + EPISODE, false, 10).len(), 1);
        // The same task again: a new episode, not due at the first one's time.
        sheds.note(shed("a", 9_000), t0 + EPISODE);
        assert!(sheds.take_due(t0 + EPISODE, false, 10).is_empty());
        for (i, task) in ["b", "c", "d"].iter().enumerate() {
            sheds.note(shed(task, 1_000 * i as i64), t0 + EPISODE);
        }
        // No room: nothing taken, nothing lost.
        assert!(sheds.take_due(t0 + EPISODE * 3, false, 0).is_empty());
        assert_eq!(sheds.take_due(t0 + EPISODE * 3, false, 2).len(), 2);
        assert_eq!(sheds.len(), 2);
        // Shutdown takes every episode, due or not.
        sheds.note(shed("e", 1_000), t0 + EPISODE * 3);
        assert_eq!(sheds.take_due(t0 + EPISODE * 3, true, 100).len(), 3);
        assert_eq!(sheds.len(), 0);
    }
}
