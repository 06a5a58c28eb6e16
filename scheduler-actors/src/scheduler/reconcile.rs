//! Applying the database's view of the tasks: new and changed tasks are (re)scheduled, removed
//! ones dropped, and fires missed meanwhile go through each task's misfire policy. Changes made
//! elsewhere (the CLI, another node) are found by reading the change mark (three numbers) every
//! second and reloading only when it moves.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use entity::task_run::RunStatus;
use scheduler_core::{plan_catch_up, rfc3339};
use store::ChangeMark;

use super::task_rows::{ReadTask, Skipped, TaskRows, Timing, read_task_rows};
use super::{Entry, FireReason, LiveTask, RUN_NOW_WINDOW, SchedulerActor};
use crate::events::RunEvent;
use crate::fire_event::fire_event;
use crate::persistence::RecordSkipped;

impl SchedulerActor {
    /// Applies the database's view of the tasks: new and changed tasks are (re)scheduled,
    /// removed ones dropped. With `catch_up`, fires missed since each task's last fire go
    /// through its misfire policy (start-up); otherwise scheduling starts from now.
    pub(super) fn apply(
        &mut self,
        runnable: TaskRows,
        mark: ChangeMark,
        catch_up: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.stopped {
            return;
        }
        let now = Utc::now();
        let total = runnable.len();
        let TaskRows { pages, skipped } = runnable;
        for Skipped { name, why, .. } in &skipped {
            if self.tasks.remove(name.as_str()).is_some() || catch_up {
                tracing::warn!(target: "cron_task", task = %name, "task not scheduled on this node: {why}");
            }
        }
        // At start-up every entry comes from this read; later, entries not in it are gone.
        let mut seen: HashSet<Arc<str>> = HashSet::new();
        if catch_up {
            self.tasks.reserve(total);
        } else {
            seen.reserve(total);
        }
        for read in pages.into_iter().flatten() {
            let ReadTask {
                meta: row,
                name,
                timing,
                spec,
            } = read;
            if self.loads.unloadable(&name, row.version) {
                continue; // its whole row did not validate; reported when it was loaded
            }
            if !catch_up {
                seen.insert(name.clone());
            }
            let run_now_at = row.run_now_at;
            // Row id too: a task removed and added again may get its old version back.
            let unchanged = self
                .tasks
                .get(&name)
                .is_some_and(|e| e.version == row.version && e.row_id == row.id);
            if !unchanged {
                let generation = self.next_generation;
                self.next_generation += 1;
                let previous = self.tasks.remove(&name);
                // A change that leaves the schedule alone (owner, description, run-now) keeps
                // the pending fire, so one due this very moment is not lost.
                let kept_next = previous.as_ref().and_then(|p| {
                    (p.timing.trigger == timing.trigger
                        && p.timing.enabled == timing.enabled
                        && timing.enabled)
                        .then_some(p.next)
                });
                let live = match previous {
                    // The executor stays until the new spec is loaded; it is kept if that is
                    // the same (see `specs`).
                    Some(p) => {
                        if p.spec.is_some() {
                            self.loads.want(name.clone());
                        }
                        p.live
                    }
                    // At start-up a request younger than the run-now window is honoured: it may
                    // have come while no node ran. Its claim keeps it to one run.
                    None => run_now_at
                        .filter(|at| now - *at > RUN_NOW_WINDOW)
                        .map(|seen| {
                            Box::new(LiveTask {
                                run_now_seen: Some(seen),
                                ..LiveTask::default()
                            })
                        }),
                };
                let next = if !timing.enabled {
                    None
                } else if let Some(next) = kept_next {
                    next
                } else if catch_up {
                    let last = row.last_run_at;
                    self.catch_up(&name, &timing, last, now)
                } else {
                    // Added or rescheduled while running: fires since the change (a date
                    // trigger due a moment after it was added) are owed like any others.
                    let since = row.updated_at - chrono::Duration::milliseconds(1);
                    let last = row.last_run_at.map_or(since, |l| l.max(since));
                    self.catch_up(&name, &timing, Some(last), now)
                };
                let entry = Entry {
                    timing,
                    spec,
                    version: row.version,
                    row_id: row.id,
                    generation,
                    next,
                    live,
                };
                if let Some(n) = next {
                    Self::push(&mut self.due, &entry, n, &name);
                }
                self.tasks.insert(name.clone(), entry);
                // At start-up most stored next fires are already right (a restart); writing
                // a million unchanged ones would only delay the first claims.
                let stored = row.next_run_at.map(|t| t.timestamp_millis());
                if !(catch_up && stored == next) {
                    self.record_next(&name);
                }
            }
            // An operator's run-now request not handled yet.
            if let Some(at) = run_now_at
                && let Some(entry) = self.tasks.get_mut(&name)
                && entry.run_now_seen().is_none_or(|seen| at > seen)
            {
                entry.live().run_now_seen = Some(at);
                if self.paused_at.is_some() {
                    // Kept, and run when the pause ends.
                    self.pending
                        .push((name.clone(), at.timestamp_millis(), FireReason::Manual));
                } else {
                    self.fire(&name, at.timestamp_millis(), FireReason::Manual);
                }
            }
        }
        if !catch_up {
            self.tasks.retain(|name, _| seen.contains(name));
        }
        self.mark = mark;
        self.arm(ctx);
    }

    /// Start-up: run what the misfire policy keeps of the fires missed since `last`, record
    /// what it drops, and return the next fire.
    pub(super) fn catch_up(
        &mut self,
        name: &Arc<str>,
        timing: &Timing,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<i64> {
        let plan = plan_catch_up(
            &timing.trigger,
            last,
            now,
            timing.misfire,
            timing.misfire_grace,
        );
        if plan.skipped.count > 0 {
            let latest = plan.skipped.latest.unwrap_or(now);
            let why = format!(
                "{}{} missed fire(s) skipped by misfire policy {} (latest {})",
                if plan.skipped.saturated {
                    "at least "
                } else {
                    ""
                },
                plan.skipped.count,
                timing.misfire,
                rfc3339(latest),
            );
            let row = entity::task_run::Model {
                fires: i32::try_from(plan.skipped.count).unwrap_or(i32::MAX),
                ..store::not_run_row(
                    name,
                    latest.timestamp_millis(),
                    &self.deps.node_id,
                    RunStatus::Misfired,
                    why,
                    Utc::now(),
                )
            };
            fire_event!(INFO, task: name, run_id: row.run_id, fire_ts_ms: row.fire_ts_ms,
                node: row.node_id, attempt: row.attempt, status: row.status.as_str(),
                "{}", row.error.as_deref().unwrap_or(""));
            self.deps.events.send(|| RunEvent::Misfired {
                task: name.to_string(),
                count: plan.skipped.count,
                latest,
            });
            self.deps.persistence.do_send(RecordSkipped(row));
        }
        for fire in &plan.run {
            self.pending
                .push((name.clone(), fire.timestamp_millis(), FireReason::CatchUp));
        }
        plan.next.map(|t| t.timestamp_millis())
    }

    /// Reads the tasks again when the change mark moved (or always, with `force`) and
    /// applies them.
    pub(super) fn reconcile(&mut self, force: bool, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if self.reconciling {
            // Asked again while reading: read once more when this round ends.
            self.reload_pending |= force;
            return;
        }
        self.reconciling = true;
        let db = self.db.clone();
        let handlers = self.handlers.clone();
        let known = self.mark;
        let fut = async move {
            // The cluster-wide pause is one row, read with every check.
            let paused = store::cluster_pause(&db).await?.paused;
            let mark = store::change_mark(&db).await?;
            if !force && mark == known {
                return Ok::<_, store::StoreError>((paused, None));
            }
            let tasks = read_task_rows(&db, &handlers).await?;
            Ok((paused, Some((tasks, mark))))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.reconciling = false;
            if std::mem::take(&mut act.reload_pending) {
                act.reconcile(true, ctx);
            }
            if let Ok((paused, _)) = &res
                && *paused != act.cluster_pause
            {
                act.cluster_pause = *paused;
                act.update_pause(ctx);
            }
            match res {
                Ok((_, Some((tasks, mark)))) => act.apply(tasks, mark, false, ctx),
                Ok((_, None)) => {}
                Err(e) => tracing::warn!(target: "cron_task", error = %e, "could not read task changes; retrying"),
            }
        }));
    }
}
