//! Task status fields waiting to be written, one pending state per task, merged as they
//! come: the latest fire's status wins (never an older fire's), and a next fire replaces the
//! one before. Pure data: the actor decides when to write them, and says what time it is.
//!
//! A task that fires every second would otherwise have its row updated at every write: what
//! is written is only what an operator would miss. A pending state is due when its last status
//! differs from the one last written for the task (a failure shows at once), or when the
//! task's fields were last written longer ago than the refresh period; a shutdown writes
//! everything.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use store::TaskState;

/// A task's name as a message carries it.
pub(super) enum TaskName<'a> {
    /// Shared with the scheduler's copy (no allocation for a new entry).
    Shared(Arc<str>),
    /// Borrowed from a message.
    Borrowed(&'a str),
}

/// Pending status fields by task.
#[derive(Debug, Default)]
pub(super) struct PendingStates {
    states: BTreeMap<Arc<str>, TaskState>,
    /// Per task: when its fields were last taken to be written, and the status they carried.
    written: HashMap<Arc<str>, (Instant, Option<RunStatus>)>,
}

impl PendingStates {
    /// Tasks with something pending.
    pub(super) fn len(&self) -> usize {
        self.states.len()
    }

    /// Nothing pending.
    pub(super) fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Takes everything pending, to be written (at shutdown).
    pub(super) fn take(&mut self, now: Instant) -> Vec<TaskState> {
        let states: Vec<TaskState> = std::mem::take(&mut self.states).into_values().collect();
        for state in &states {
            self.mark_written(state, now);
        }
        states
    }

    /// Takes what is due (see the module's docs), to be written; the rest stays pending.
    pub(super) fn take_due(&mut self, now: Instant, refresh: Duration) -> Vec<TaskState> {
        let written = &self.written;
        let due = |name: &Arc<str>, state: &TaskState| match written.get(name) {
            None => true,
            Some((at, status)) => {
                now.saturating_duration_since(*at) >= refresh
                    || state.last_status.is_some_and(|s| Some(s) != *status)
            }
        };
        let names: Vec<Arc<str>> = self
            .states
            .iter()
            .filter(|(name, state)| due(name, state))
            .map(|(name, _)| name.clone())
            .collect();
        let mut states = Vec::with_capacity(names.len());
        for name in names {
            if let Some(state) = self.states.remove(&name) {
                self.mark_written(&state, now);
                states.push(state);
            }
        }
        // An entry older than the refresh period decides nothing an absent one would not.
        self.written
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < refresh);
        states
    }

    /// Notes a task's fields as written. A task with no status yet is not noted (a first start
    /// computes a next fire for every task, a million of them; nothing would be held back).
    fn mark_written(&mut self, state: &TaskState, now: Instant) {
        let status = match (state.last_status, self.written.get(&state.task_name)) {
            (Some(s), _) => Some(s),
            (None, Some((_, previous))) => *previous,
            (None, None) => return,
        };
        self.written.insert(state.task_name.clone(), (now, status));
    }

    /// Merges status fields into the task's pending state.
    pub(super) fn note(
        &mut self,
        task: TaskName<'_>,
        last: Option<(DateTime<Utc>, RunStatus)>,
        next: Option<Option<DateTime<Utc>>>,
    ) {
        self.merge(task, last, next, true);
    }

    /// Merges fields into the task's pending state; `newest` says whether they came after
    /// what is pending (a status of the same fire then replaces the pending one) or before.
    fn merge(
        &mut self,
        task: TaskName<'_>,
        last: Option<(DateTime<Utc>, RunStatus)>,
        next: Option<Option<DateTime<Utc>>>,
        newest: bool,
    ) {
        let name: &str = match &task {
            TaskName::Shared(a) => a,
            TaskName::Borrowed(s) => s,
        };
        let state = match self.states.get_mut(name) {
            Some(state) => state,
            None => {
                let name: Arc<str> = match task {
                    TaskName::Shared(a) => a,
                    TaskName::Borrowed(s) => Arc::from(s),
                };
                self.states.entry(name.clone()).or_insert(TaskState {
                    task_name: name,
                    last_run_at: None,
                    last_status: None,
                    next_run_at: None,
                })
            }
        };
        if let Some((at, status)) = last
            && state
                .last_run_at
                .is_none_or(|prev| at > prev || (newest && at == prev))
        {
            state.last_run_at = Some(at);
            state.last_status = Some(status);
        }
        if let Some(next) = next {
            state.next_run_at = Some(next);
        }
    }

    /// Puts back states that were taken but not written. They are older than anything noted
    /// since, so they merge as if they had come first: a newer value for a field wins.
    pub(super) fn restore(&mut self, older: Vec<TaskState>) {
        for old in older {
            // Not written after all: due again at once.
            self.written.remove(&old.task_name);
            let last = old.last_run_at.zip(old.last_status);
            let newer_next = self
                .states
                .get(&*old.task_name)
                .is_some_and(|newer| newer.next_run_at.is_some());
            let next = if newer_next { None } else { old.next_run_at };
            self.merge(TaskName::Shared(old.task_name), last, next, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    #[test]
    fn an_older_fire_never_overwrites_a_newer_status() {
        let mut p = PendingStates::default();
        p.note(
            TaskName::Borrowed("a.b"),
            Some((at(20), RunStatus::Failed)),
            None,
        );
        p.note(
            TaskName::Borrowed("a.b"),
            Some((at(10), RunStatus::Succeeded)),
            Some(Some(at(30))),
        );
        let states = p.take(Instant::now());
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].last_status, Some(RunStatus::Failed));
        assert_eq!(states[0].last_run_at, Some(at(20)));
        assert_eq!(states[0].next_run_at, Some(Some(at(30))));
        assert!(p.is_empty());
    }

    #[test]
    fn an_unchanged_status_waits_for_the_refresh_and_a_changed_one_does_not() {
        let refresh = Duration::from_secs(10);
        let t0 = Instant::now();
        let ok = |s| Some((at(s), RunStatus::Succeeded));
        let mut p = PendingStates::default();
        p.note(TaskName::Borrowed("a.b"), ok(1), Some(Some(at(2))));
        p.note(TaskName::Borrowed("c.d"), ok(1), Some(Some(at(2))));
        // Never written: due.
        assert_eq!(p.take_due(t0, refresh).len(), 2);
        // The same status a second later: held, and merged with what comes next.
        p.note(TaskName::Borrowed("a.b"), ok(2), Some(Some(at(3))));
        p.note(TaskName::Borrowed("c.d"), ok(2), Some(Some(at(3))));
        assert!(p.take_due(t0 + Duration::from_secs(1), refresh).is_empty());
        // A failure shows at once; the unchanged task waits.
        p.note(
            TaskName::Borrowed("c.d"),
            Some((at(3), RunStatus::Failed)),
            Some(Some(at(4))),
        );
        let due = p.take_due(t0 + Duration::from_secs(2), refresh);
        assert_eq!(due.len(), 1);
        assert_eq!(&*due[0].task_name, "c.d");
        assert_eq!(due[0].last_status, Some(RunStatus::Failed));
        // After the refresh period the held one goes, with its newest fields.
        let due = p.take_due(t0 + refresh, refresh);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].last_run_at, Some(at(2)));
        assert_eq!(due[0].next_run_at, Some(Some(at(3))));
        // A write that failed comes back due at once.
        p.restore(due);
        assert_eq!(p.take_due(t0 + refresh, refresh).len(), 1);
        // A next fire alone (no status) is held like an unchanged status.
        p.note(TaskName::Borrowed("a.b"), None, Some(Some(at(9))));
        assert!(p.take_due(t0 + refresh, refresh).is_empty());
        // A task that never ran is not noted as written: its next fires go as they come.
        for _ in 0..2 {
            p.note(TaskName::Borrowed("e.f"), None, Some(Some(at(9))));
            assert_eq!(p.take_due(t0 + refresh, refresh).len(), 1);
        }
        // At shutdown everything goes.
        assert_eq!(p.take(t0 + refresh).len(), 1);
        assert!(p.is_empty());
    }

    #[test]
    fn restored_states_lose_to_what_was_noted_since() {
        let mut p = PendingStates::default();
        p.note(TaskName::Borrowed("a.b"), None, Some(Some(at(100))));
        let taken = p.take(Instant::now());
        // Meanwhile a newer next fire, and an older write comes back after a failure.
        p.note(TaskName::Borrowed("a.b"), None, Some(Some(at(200))));
        p.restore(taken);
        let states = p.take(Instant::now());
        assert_eq!(states[0].next_run_at, Some(Some(at(200))));
        // With nothing newer, the restored value stands.
        p.restore(states);
        assert_eq!(p.len(), 1);
        assert_eq!(p.take(Instant::now())[0].next_run_at, Some(Some(at(200))));
    }

    #[test]
    fn a_restored_status_of_the_same_fire_loses_to_the_one_noted_since() {
        let mut p = PendingStates::default();
        p.note(
            TaskName::Borrowed("a.b"),
            Some((at(50), RunStatus::Succeeded)),
            None,
        );
        p.restore(vec![TaskState {
            task_name: Arc::from("a.b"),
            last_run_at: Some(at(50)),
            last_status: Some(RunStatus::SkippedOverlap),
            next_run_at: None,
        }]);
        assert_eq!(
            p.take(Instant::now())[0].last_status,
            Some(RunStatus::Succeeded)
        );
    }
}
