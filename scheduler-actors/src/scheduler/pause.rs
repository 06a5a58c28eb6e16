//! Pausing: firing stops while this node (`Pause`) or the cluster (`cluster_state`) is paused;
//! at the end of a pause the fires missed meanwhile go through each task's misfire policy.

use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::SchedulerActor;

impl SchedulerActor {
    /// Starts paused if the cluster is paused.
    pub(crate) fn with_cluster_pause(mut self, paused: bool) -> Self {
        self.cluster_pause = paused;
        if paused {
            self.paused_at = Some(Utc::now());
        }
        self
    }

    /// Pauses or resumes firing after a change of either pause: firing stops while this node
    /// or the cluster is paused.
    pub(super) fn update_pause(&mut self, ctx: &mut Context<Self>) {
        let paused = self.local_pause || self.cluster_pause;
        match (paused, self.paused_at.is_some()) {
            (true, false) => {
                self.paused_at = Some(Utc::now());
                tracing::info!(target: "cron_task", node = %self.deps.node_id, cluster = self.cluster_pause, "scheduler paused");
                self.arm(ctx);
            }
            (false, true) => self.resume_firing(ctx),
            _ => {}
        }
    }

    /// Ends a pause: fires missed meanwhile go through each task's misfire policy.
    fn resume_firing(&mut self, ctx: &mut Context<Self>) {
        if self.paused_at.take().is_none() {
            return;
        }
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let overdue: Vec<Arc<str>> = self
            .tasks
            .iter()
            .filter(|(_, e)| e.next.is_some_and(|n| n <= now_ms))
            .map(|(n, _)| n.clone())
            .collect();
        for name in overdue {
            let Some(entry) = self.tasks.get(&name) else {
                continue;
            };
            let timing = entry.timing.clone();
            // Everything from the first overdue fire on is owed.
            let last = entry
                .next
                .and_then(|n| DateTime::from_timestamp_millis(n - 1));
            let next = self.catch_up(&name, &timing, last, now);
            let generation = self.next_generation;
            self.next_generation += 1;
            if let Some(entry) = self.tasks.get_mut(&name) {
                entry.generation = generation;
                entry.next = next;
                if let Some(n) = next {
                    Self::push(&mut self.due, entry, n, &name);
                }
            }
            self.record_next(&name);
        }
        tracing::info!(target: "cron_task", "scheduler resumed");
        self.arm(ctx);
    }
}
