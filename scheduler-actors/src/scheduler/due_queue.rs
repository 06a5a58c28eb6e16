//! The fires a scheduler has yet to send, earliest first.
//!
//! Pure data: no actor context and no clock. The caller says what time it is, and which
//! entries are still live (a task that changed or went away leaves its old entries behind;
//! they are dropped when they surface rather than searched for).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// One fire waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DueFire {
    /// The task.
    pub(crate) task: Arc<str>,
    /// Its fire time, UTC epoch ms.
    pub(crate) at: i64,
    /// The task's generation when the fire was queued; a changed task has a new one.
    pub(crate) generation: u64,
}

/// A queued fire: (dispatch ms, fire ms, generation, task), ordered by dispatch first.
type Queued = (i64, i64, u64, Arc<str>);

/// Fires by dispatch time: the fire time, or earlier for a fire that is prepared ahead.
#[derive(Debug, Default)]
pub(crate) struct DueQueue {
    /// The earliest dispatch on top.
    heap: BinaryHeap<Reverse<Queued>>,
}

impl DueQueue {
    /// Queues a fire to be sent at `dispatch_ms` (at or before its fire time).
    pub(crate) fn push(&mut self, fire: DueFire, dispatch_ms: i64) {
        self.heap
            .push(Reverse((dispatch_ms, fire.at, fire.generation, fire.task)));
    }

    /// Takes the earliest fire whose dispatch time is `now_ms` or earlier. Stale entries come
    /// out like any other: the caller checks them against its tasks.
    pub(crate) fn pop_due(&mut self, now_ms: i64) -> Option<DueFire> {
        let Reverse((dispatch, ..)) = self.heap.peek()?;
        if *dispatch > now_ms {
            return None;
        }
        let Reverse((_, at, generation, task)) = self.heap.pop()?;
        Some(DueFire {
            task,
            at,
            generation,
        })
    }

    /// When the earliest live fire is to be sent. Stale entries on top are dropped on the
    /// way, so a timer is never set for a fire that will not be sent.
    pub(crate) fn next_dispatch(
        &mut self,
        is_live: impl Fn(&str, u64, i64) -> bool,
    ) -> Option<i64> {
        while let Some(Reverse((dispatch, at, generation, task))) = self.heap.peek() {
            if is_live(task, *generation, *at) {
                return Some(*dispatch);
            }
            self.heap.pop();
        }
        None
    }

    /// Entries queued, stale ones included.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire(task: &str, at: i64, generation: u64) -> DueFire {
        DueFire {
            task: Arc::from(task),
            at,
            generation,
        }
    }

    /// A queue of (task, fire ms, generation, dispatch ms).
    fn queue(fires: &[(&str, i64, u64, i64)]) -> DueQueue {
        let mut q = DueQueue::default();
        for (task, at, generation, dispatch) in fires {
            q.push(fire(task, *at, *generation), *dispatch);
        }
        q
    }

    #[test]
    fn fires_come_out_by_dispatch_time_and_only_when_due() {
        // "c" is prepared ahead: dispatched before "a" although it fires after it.
        let mut q = queue(&[
            ("b", 2_000, 1, 2_000),
            ("a", 1_000, 1, 1_000),
            ("c", 1_100, 1, 900),
        ]);
        assert_eq!(q.pop_due(899), None);
        assert_eq!(q.pop_due(1_000), Some(fire("c", 1_100, 1)));
        assert_eq!(q.pop_due(1_000), Some(fire("a", 1_000, 1)));
        assert_eq!(q.pop_due(1_999), None, "b is not due yet");
        assert_eq!(q.next_dispatch(|_, _, _| true), Some(2_000));
        assert_eq!(q.pop_due(5_000), Some(fire("b", 2_000, 1)));
        assert_eq!(q.pop_due(5_000), None);
    }

    #[test]
    fn stale_entries_on_top_never_set_the_timer() {
        let mut q = queue(&[("a", 1_000, 1, 1_000), ("a", 3_000, 2, 3_000)]);
        q.push(fire("b", 2_000, 7), 2_000);
        // "a" changed (generation 2 now): its first entry is dead, so is "b".
        let live = |task: &str, generation: u64, _at: i64| task == "a" && generation == 2;
        assert_eq!(q.next_dispatch(live), Some(3_000));
        assert_eq!(q.len(), 1, "dead entries above the live one were dropped");
        assert_eq!(q.next_dispatch(|_, _, _| false), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn liveness_is_asked_with_the_fire_time_not_the_dispatch_time() {
        // Prepared ahead: dispatched 200 ms before its fire time.
        let mut q = queue(&[("a", 1_200, 1, 1_000)]);
        let live =
            |task: &str, generation: u64, at: i64| task == "a" && generation == 1 && at == 1_200;
        assert_eq!(q.next_dispatch(live), Some(1_000));
        assert_eq!(q.pop_due(1_000), Some(fire("a", 1_200, 1)));
    }

    #[test]
    fn fires_of_one_instant_all_come_out() {
        let mut q = DueQueue::default();
        for i in 0..1000 {
            q.push(fire(&format!("t{i}"), 1_000, 1), 1_000);
        }
        let mut n = 0;
        while q.pop_due(1_000).is_some() {
            n += 1;
        }
        assert_eq!(n, 1000);
    }
}
