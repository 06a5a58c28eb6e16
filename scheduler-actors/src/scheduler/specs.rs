//! Idle tasks and their specs. A node may hold a million tasks that fire daily; of those it
//! keeps only what scheduling needs (the name, a shared [`Timing`](super::task_rows::Timing),
//! the row's id and version, the next fire). A task's whole spec (handler, arguments,
//! timeout, lock ttl, shadow mode, ...) is kept while it fires within [`KEEP_AHEAD`], and
//! otherwise read from the database when its next fire comes within [`LOAD_AHEAD`]: the
//! scheduler's queue hands such a fire out that early, the spec is loaded with the others due
//! then (one statement per thousand), and the fire goes on at its usual time. A fire that
//! finds no spec (a run-now request, a catch-up fire, a recovered run) waits for the load.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use super::SchedulerActor;
use super::task_rows::{Skipped, TaskRows, read_tasks_by_id};
use crate::executor::Fire;

/// A task whose next fire is at most this far ahead keeps its whole spec.
pub(super) const KEEP_AHEAD: chrono::Duration = chrono::Duration::minutes(2);
/// An idle task's spec is read this long before its fire.
pub(super) const LOAD_AHEAD: Duration = Duration::from_secs(5);
/// After a failed load, the next try.
const LOAD_RETRY: Duration = Duration::from_secs(1);

/// Specs to load, and fires waiting for theirs.
#[derive(Default)]
pub(super) struct SpecLoads {
    /// Tasks whose spec is wanted (a fire within [`LOAD_AHEAD`]).
    wanted: HashSet<Arc<str>>,
    /// Fires to send once their task's spec is here.
    waiting: Vec<(Arc<str>, Fire)>,
    /// A load is on its way (one at a time).
    loading: bool,
    /// Tasks whose whole row did not validate when loaded (a row edited by hand), by the
    /// version that did not: left unscheduled until the row changes.
    unloadable: HashMap<Arc<str>, i64>,
}

impl SpecLoads {
    /// Asks for the task's spec ahead of a fire.
    pub(super) fn want(&mut self, name: Arc<str>) {
        self.wanted.insert(name);
    }

    /// Whether this version of the task's row failed to load (and the task is left out).
    pub(super) fn unloadable(&mut self, name: &Arc<str>, version: i64) -> bool {
        match self.unloadable.get(name) {
            Some(v) if *v == version => true,
            Some(_) => {
                self.unloadable.remove(name);
                false
            }
            None => false,
        }
    }

    /// Keeps a fire until its task's spec is loaded.
    pub(super) fn wait(&mut self, name: Arc<str>, fire: Fire) {
        self.wanted.insert(name.clone());
        self.waiting.push((name, fire));
    }
}

impl SchedulerActor {
    /// Starts loading the specs wanted, unless a load is on its way.
    pub(super) fn load_specs(&mut self, ctx: &mut Context<Self>) {
        if self.loads.loading || self.loads.wanted.is_empty() || self.stopped {
            return;
        }
        let wanted = std::mem::take(&mut self.loads.wanted);
        let ids: Vec<i64> = wanted
            .iter()
            .filter_map(|name| self.tasks.get(name))
            .filter(|e| e.spec.is_none())
            .map(|e| e.row_id)
            .collect();
        if ids.is_empty() {
            // All here already, or gone.
            self.send_waiting(&wanted, ctx);
            return;
        }
        self.loads.loading = true;
        let (db, handlers) = (self.db.clone(), self.handlers.clone());
        let fut = async move { read_tasks_by_id(&db, &handlers, &ids).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.loads.loading = false;
            match res {
                Ok(rows) => {
                    act.take_specs(rows, ctx);
                    act.send_waiting(&wanted, ctx);
                }
                Err(e) => {
                    tracing::warn!(target: "cron_task", error = %e, tasks = wanted.len(), "could not load the definitions of tasks about to fire; retrying");
                    act.loads.wanted.extend(wanted);
                    ctx.run_later(LOAD_RETRY, |act, ctx| act.load_specs(ctx));
                    return;
                }
            }
            act.load_specs(ctx);
        }));
    }

    /// Gives the loaded specs to their tasks. A row that changed meanwhile is applied by a
    /// reconcile at once; one whose whole row does not validate is reported and left out
    /// until it changes.
    fn take_specs(&mut self, rows: TaskRows, ctx: &mut Context<Self>) {
        let TaskRows { pages, skipped } = rows;
        let mut changed = false;
        for read in pages.into_iter().flatten() {
            if let Some(entry) = self.tasks.get_mut(&read.name)
                && entry.row_id == read.meta.id
                && entry.spec.is_none()
            {
                entry.spec = read.spec;
                changed |= entry.version != read.meta.version;
            }
        }
        for Skipped { name, version, why } in skipped {
            tracing::warn!(target: "cron_task", task = %name, "task not scheduled on this node: {why}");
            let name: Arc<str> = Arc::from(name);
            self.tasks.remove(&name);
            self.loads.unloadable.insert(name, version);
        }
        if changed {
            self.reconcile(true, ctx);
        }
    }

    /// Sends the fires whose spec is here. Those of tasks loaded just now (`loaded`) that
    /// still have none are dropped: the task was removed or is no longer runnable here, and
    /// the reconcile under way takes it off. The rest wait for the next load.
    fn send_waiting(&mut self, loaded: &HashSet<Arc<str>>, ctx: &mut Context<Self>) {
        if self.stopped {
            // Passed by: recorded by whoever runs them, or by the misfire policy at the next
            // start.
            self.loads.waiting.clear();
            return;
        }
        for (name, fire) in std::mem::take(&mut self.loads.waiting) {
            match self.tasks.get(&name) {
                Some(e) if e.spec.is_some() => self.send_fire(&name, fire),
                Some(_) if !loaded.contains(&name) => self.loads.wait(name, fire),
                _ => {
                    tracing::debug!(target: "cron_task", task = %name, fire_ts_ms = fire.fire_ts_ms, "fire dropped: the task is gone or not runnable here");
                }
            }
        }
        self.load_specs(ctx);
    }

    /// Lets idle tasks go back to their small form: no executor, nothing running, and the
    /// next fire more than [`KEEP_AHEAD`] away.
    pub(super) fn forget_idle_specs(&mut self) {
        let keep_until = (Utc::now() + KEEP_AHEAD).timestamp_millis();
        for entry in self.tasks.values_mut() {
            if entry.live.is_none()
                && entry.spec.is_some()
                && entry.next.is_none_or(|n| n > keep_until)
            {
                entry.spec = None;
            }
        }
    }
}
