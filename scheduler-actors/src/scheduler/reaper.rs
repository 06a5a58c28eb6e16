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
        let timeout = self.node_timeout;
        let fut = async move {
            let dead = store::mark_dead_nodes(&db, timeout, &me).await?;
            let orphans = store::orphan_runs(&db).await?;
            Ok::<_, store::StoreError>((dead, orphans))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((dead, orphans)) => {
                for node in &dead {
                    tracing::warn!(target: "cron_task", dead_node = %node, node = %act.deps.node_id, "node declared dead: no heartbeat within the node timeout");
                }
                act.settle_orphans(orphans, ctx);
            }
            Err(e) => {
                act.reaping = false;
                tracing::warn!(target: "cron_task", error = %e, "could not look for dead nodes; retrying");
            }
        }));
    }

    fn settle_orphans(&mut self, orphans: Vec<OrphanRun>, ctx: &mut Context<Self>) {
        let mut abandon = Vec::new();
        let mut take = Vec::new();
        for o in orphans {
            let rerun = o.recover && o.attempt == 1;
            if rerun && self.tasks.contains_key(o.task_name.as_str()) {
                take.push(o);
            } else if !rerun && o.status == RunStatus::Running.as_str() {
                abandon.push(o);
            }
        }
        if abandon.is_empty() && take.is_empty() {
            self.reaping = false;
            return;
        }
        let db = self.db.clone();
        let me = self.deps.node_id.clone();
        let events = self.deps.events.clone();
        let fut = async move {
            let now = Utc::now();
            for o in &abandon {
                if store::abandon_run(&db, o, now).await? {
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
            }
            let mut won = Vec::new();
            for o in take {
                let run_id = uuid::Uuid::new_v4().to_string();
                if store::take_over_run(&db, &o, &me, &run_id, now).await? {
                    won.push((o, run_id));
                }
            }
            Ok::<_, store::StoreError>(won)
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _ctx| {
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
                }
                Err(e) => tracing::warn!(target: "cron_task", error = %e, "could not settle runs of dead nodes; retrying"),
            }
        }));
    }
}
