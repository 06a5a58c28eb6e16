//! Dead nodes and what they left: a node whose heartbeat is older than the node timeout is
//! declared dead, and its `running` fires are abandoned or, where the task has `recover`,
//! taken over and run here as the next attempt (as are first attempts a shutdown
//! `interrupted`, so a peer picks them up at once).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use entity::task_run::RunStatus;
use store::OrphanRun;

use super::SchedulerActor;

/// The most re-run candidates (first attempts of `recover` tasks) one round of the reaper
/// collects (about 100 bytes each): candidates of tasks this node does not have take room too,
/// so the bound is wide; the rest wait for the next round.
const MAX_RERUNS_PER_ROUND: usize = 100_000;
use crate::events::RunEvent;
use crate::executor::{Fire, FireReason};
use crate::fire_event::fire_event;

impl SchedulerActor {
    /// Declares nodes with stale heartbeats dead and settles the runs they left: `abandoned`,
    /// or re-run here as the next attempt when the task has `recover` (also for first
    /// attempts `interrupted` by a shutdown, so a peer picks them up at once).
    pub(super) fn reap(&mut self, ctx: &mut Context<Self>) {
        if self.reaping || self.stopped {
            return;
        }
        // Right after this node's own database outage every peer looks dead (none could
        // write heartbeats); wait until they have had time to write one.
        let fresh_for = self.deps.health.database_ok_for();
        if fresh_for < self.node_timeout + Duration::from_secs(1) {
            return;
        }
        self.reaping = true;
        let db = self.db.clone();
        let me = self.deps.node_id.clone();
        let events = self.deps.events.clone();
        let timeout = self.node_timeout;
        // Page by page (one statement per page, bounded memory): runs to abandon are settled
        // here at once; first attempts to re-run go back to the actor, which knows its tasks.
        let fut = async move {
            let dead = store::mark_dead_nodes(&db, timeout, &me).await?;
            let gone = store::gone_nodes_with_runs(&db).await?;
            let kinds = gone
                .iter()
                .map(|node| store::Orphans::RunningOn(node))
                .chain([store::Orphans::Interrupted]);
            let mut rerun = Vec::new();
            for which in kinds {
                let mut after = 0;
                loop {
                    let page = store::orphan_runs(&db, which, after, store::SETTLE_PAGE).await?;
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    let full = page.len() as u64 == store::SETTLE_PAGE;
                    let take = abandon_dead_nodes_runs(&db, &events, &me, page).await?;
                    // Re-runs are taken a bounded number per round; the rest wait for the next.
                    if rerun.len() < MAX_RERUNS_PER_ROUND {
                        rerun.extend(take);
                    }
                    if !full {
                        break;
                    }
                }
            }
            Ok::<_, store::StoreError>((dead, rerun))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((dead, rerun)) => {
                for node in &dead {
                    tracing::warn!(target: "cron_task", dead_node = %node, node = %act.deps.node_id, "node declared dead: no heartbeat within the node timeout");
                }
                act.rerun_orphans(rerun, ctx);
            }
            Err(e) => {
                act.reaping = false;
                tracing::warn!(target: "cron_task", error = %e, "could not settle runs of dead nodes; retrying");
            }
        }));
    }

    /// Takes over, as the next attempt here, the first attempts of `recover` tasks this node
    /// has whose node died or shut down.
    fn rerun_orphans(&mut self, orphans: Vec<OrphanRun>, ctx: &mut Context<Self>) {
        let take: Vec<OrphanRun> = orphans
            .into_iter()
            .filter(|o| self.tasks.contains_key(o.task_name.as_str()))
            .collect();
        if take.is_empty() {
            self.reaping = false;
            return;
        }
        let db = self.db.clone();
        let me = self.deps.node_id.clone();
        let fut = async move {
            let now = Utc::now();
            let mut won = Vec::new();
            for o in take {
                let run_id = store::new_run_id();
                if store::take_over_run(&db, &o, &me, &run_id, now).await? {
                    won.push((o, run_id));
                }
            }
            Ok::<_, store::StoreError>(won)
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.reaping = false;
            match res {
                Ok(won) => {
                    for (o, run_id) in won {
                        fire_event!(INFO, task: o.task_name, run_id: run_id, fire_ts_ms: o.fire_ts_ms,
                            node: act.deps.node_id, attempt: o.attempt + 1, status: RunStatus::Running.as_str(),
                            "re-running a fire whose attempt {} was {} on node {}", o.attempt, o.status, o.node_id);
                        let name: Arc<str> = Arc::from(o.task_name.as_str());
                        act.send_fire(&name, Fire {
                            fire_ts_ms: o.fire_ts_ms,
                            attempt: o.attempt + 1,
                            reason: FireReason::Recovery,
                            preclaimed_run_id: Some(run_id),
                        });
                    }
                    act.load_specs(ctx);
                }
                Err(e) => tracing::warn!(target: "cron_task", error = %e, "could not settle runs of dead nodes; retrying"),
            }
        }));
    }
}

/// Abandons a page's runs of dead nodes (one statement per node), each reported once, and
/// hands back the first attempts of `recover` tasks, to be re-run. (A page of interrupted
/// runs holds only those.)
async fn abandon_dead_nodes_runs(
    db: &sea_orm::DatabaseConnection,
    events: &crate::events::RunEventsSender,
    me: &str,
    page: Vec<OrphanRun>,
) -> Result<Vec<OrphanRun>, store::StoreError> {
    let (take, abandon): (Vec<OrphanRun>, Vec<OrphanRun>) =
        page.into_iter().partition(|o| o.recover && o.attempt == 1);
    for o in store::abandon_runs(db, &abandon, Utc::now()).await? {
        events.send(|| RunEvent::RunFinished {
            task: o.task_name.clone(),
            run_id: o.run_id.clone(),
            fire_time: crate::executor::fire_time(o.fire_ts_ms),
            attempt: crate::events::attempt(o.attempt),
            status: RunStatus::Abandoned,
            duration: Duration::ZERO,
            error: Some(format!("node {} died while this ran", o.node_id)),
        });
        fire_event!(WARN, task: o.task_name, run_id: o.run_id, fire_ts_ms: o.fire_ts_ms,
            node: o.node_id, attempt: o.attempt, status: RunStatus::Abandoned.as_str(),
            settled_by = %me, "run abandoned: its node died");
    }
    Ok(take)
}
