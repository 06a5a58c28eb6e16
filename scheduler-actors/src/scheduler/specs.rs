//! Idle tasks and their specs. A node may hold a million tasks that fire daily; of those it
//! keeps only what scheduling needs (the name, a shared [`Timing`](super::task_rows::Timing),
//! the row's id and version, the next fire). A task's whole spec (handler, arguments,
//! timeout, lock ttl, shadow mode, ...) is kept while it fires within [`KEEP_AHEAD`], and
//! otherwise read from the database when its next fire comes within [`LOAD_AHEAD`]: the
//! scheduler's queue hands such a fire out that early, the spec is loaded with the others due
//! then (one statement per thousand), and the fire goes on at its usual time. A fire that
//! finds no spec (a run-now request, a catch-up fire, a recovered run) waits for the load.
//! The idle sweep (executors, live state, specs) is here too.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use super::task_rows::{Skipped, TaskRows, read_tasks_by_id};
use super::{EXECUTOR_IDLE, SchedulerActor};
use crate::executor::{Fire, finished_run};
use crate::fire_event::fire_event;
use entity::task_run::RunStatus;

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
                    let mut loaded = wanted;
                    for name in act.take_specs(rows, ctx) {
                        loaded.remove(&name);
                        act.loads.want(name);
                    }
                    act.send_waiting(&loaded, ctx);
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

    /// Gives the loaded specs to their tasks, and hands back the tasks to load again: a row
    /// whose version is not the scheduler's (a change read by one and not the other yet; a
    /// reconcile settles it first). A whole row that does not validate is reported and left
    /// out until it changes.
    fn take_specs(&mut self, rows: TaskRows, ctx: &mut Context<Self>) -> Vec<Arc<str>> {
        let TaskRows { pages, skipped } = rows;
        let mut again = Vec::new();
        for read in pages.into_iter().flatten() {
            let Some(entry) = self.tasks.get_mut(&read.name) else {
                continue;
            };
            if entry.row_id != read.meta.id || entry.spec.is_some() {
                continue;
            }
            if entry.version != read.meta.version {
                again.push(read.name);
                continue;
            }
            // An executor kept through a change runs on only if its spec is the same.
            if let Some(live) = entry.live.as_mut()
                && live.executor_spec != read.spec
            {
                live.executor = None;
                live.executor_spec = None;
            }
            entry.spec = read.spec;
        }
        for Skipped { name, version, why } in skipped {
            tracing::warn!(target: "cron_task", task = %name, "task not scheduled on this node: {why}");
            let name: Arc<str> = Arc::from(name);
            self.tasks.remove(&name);
            self.loads.unloadable.insert(name, version);
        }
        if !again.is_empty() {
            self.reconcile(true, ctx);
        }
        again
    }

    /// Sends the fires whose spec is here. Those of tasks loaded just now (`loaded`) that
    /// still have none go no further: the task was removed or is no longer runnable here
    /// (see [`Self::give_up`]). The rest wait for the next load.
    fn send_waiting(&mut self, loaded: &HashSet<Arc<str>>, ctx: &mut Context<Self>) {
        for (name, fire) in std::mem::take(&mut self.loads.waiting) {
            if self.stopped {
                self.give_up(&name, &fire, "not started: the node is shutting down");
                continue;
            }
            match self.tasks.get(&name) {
                Some(e) if e.spec.is_some() => self.send_fire(&name, fire),
                Some(_) if !loaded.contains(&name) => self.loads.wait(name, fire),
                _ => self.give_up(
                    &name,
                    &fire,
                    "not started: the task was removed or is not runnable on this node",
                ),
            }
        }
        self.load_specs(ctx);
    }

    /// A waiting fire that will not be sent. A recovered fire's row (taken over for this
    /// attempt) is recorded `interrupted`, as an executor records one it does not start; any
    /// other fire has no row yet and is left to whoever runs it, or to the misfire policy.
    fn give_up(&self, name: &Arc<str>, fire: &Fire, why: &str) {
        let Some(run_id) = &fire.preclaimed_run_id else {
            tracing::info!(target: "cron_task", task = %name, fire_ts_ms = fire.fire_ts_ms, "fire passed by: {why}");
            return;
        };
        fire_event!(WARN, task: name, run_id: run_id, fire_ts_ms: fire.fire_ts_ms,
            node: self.deps.node_id, attempt: fire.attempt, status: RunStatus::Interrupted.as_str(),
            "{why}");
        self.deps.persistence.do_send(finished_run(
            name,
            fire,
            run_id,
            RunStatus::Interrupted,
            Some(why.to_owned()),
            None,
            Duration::ZERO,
        ));
    }

    /// Lets idle tasks go back to their small form, in one pass over them all: an executor
    /// with nothing running and idle for [`EXECUTOR_IDLE`] is dropped; the live state goes
    /// once nothing holds it (no executor, no run, no run-now); and then the spec, unless the
    /// next fire is within [`KEEP_AHEAD`].
    pub(super) fn sweep_idle(&mut self) {
        let now = Utc::now();
        let cutoff = now.timestamp_millis() - EXECUTOR_IDLE.as_millis() as i64;
        let keep_until = (now + KEEP_AHEAD).timestamp_millis();
        for entry in self.tasks.values_mut() {
            if let Some(live) = &mut entry.live {
                if live.state.running.load(Ordering::Acquire) == 0
                    && live.state.last_active_ms.load(Ordering::Relaxed) < cutoff
                {
                    // Dropping the only address stops the actor once its mailbox is empty.
                    live.executor = None;
                }
                if live.executor.is_none()
                    && live.run_now_seen.is_none()
                    && Arc::strong_count(&live.state) == 1
                {
                    entry.live = None;
                }
            }
            if entry.live.is_none()
                && entry.spec.is_some()
                && entry.next.is_none_or(|n| n > keep_until)
            {
                entry.spec = None;
            }
        }
    }
}
