//! The node's alerter: it follows the node's run events, so the node that records an outcome
//! is the one that alerts on it, once across the cluster (a run whose node died is reported by
//! the node that settles it `abandoned`). Each event worth an alert is enriched from the
//! database (owner, zone, the routes the task names, the output) and queued on every route
//! that takes it. Also the dead-man check (`silent`), a built-in task.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use super::deliver::{Outcome, Queued, RouteQueue, Sender};
use super::{Alert, AlertConfig, AlertEvent};
use crate::events::{RunEvent, RunEvents};
use crate::metrics::Metrics;
use crate::tasks::{CodeTasks, TaskContext, TaskFailure, TaskHandler};

/// Events worth an alert waiting to be enriched; one more is dropped (counted).
const PENDING: usize = 4096;
/// How often the alerter re-reads which tasks name routes of their own.
const NAMED_REFRESH: Duration = Duration::from_secs(15);

/// An event worth an alert, before it is enriched.
struct Pending {
    event: AlertEvent,
    task: String,
    run_id: Option<String>,
    fire_time: Option<DateTime<Utc>>,
    status: Option<String>,
    attempt: Option<u32>,
    duration_ms: Option<u64>,
    error: Option<String>,
}

/// Reads until `read` breaks with an answer, 100 ms apart, for at most 2 s; `None` when the
/// time is up. What an event reports is written in the persistence actor's next batch, a
/// moment after the event.
async fn await_record<T, Fut>(mut read: impl FnMut() -> Fut) -> Option<T>
where
    Fut: std::future::Future<Output = ControlFlow<T>>,
{
    for _ in 0..20 {
        match read().await {
            ControlFlow::Break(answer) => return Some(answer),
            ControlFlow::Continue(()) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// How a run stands in the database when its alert is made.
enum Recorded {
    /// Finished, with this status and output.
    As(crate::RunStatus, Option<String>),
    /// Another claim took the fire over (the row has another run id).
    TakenOver,
    /// Not finished yet, or unreadable: alerted as the event says.
    NotYet,
}

/// The node's alerter.
pub(crate) struct Alerter {
    config: AlertConfig,
    sender: Arc<Sender>,
    queues: HashMap<String, RouteQueue>,
    /// Tasks that name routes of their own, with the names.
    named: Mutex<HashMap<String, Vec<String>>>,
    pending: mpsc::Sender<Pending>,
}

impl Alerter {
    /// Starts the alerter on `rt` following `events`; `None` when no route is configured.
    pub(crate) fn start(
        config: AlertConfig,
        db: DatabaseConnection,
        metrics: Arc<Metrics>,
        node: String,
        rt: &tokio::runtime::Handle,
        events: RunEvents,
    ) -> Option<Arc<Alerter>> {
        if config.routes.is_empty() {
            return None;
        }
        let sender = Arc::new(Sender::new(&config, Some(db), metrics, &node));
        let queues = config
            .routes
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    RouteQueue::start(rt, r.clone(), sender.clone()),
                )
            })
            .collect();
        let (pending, rx) = mpsc::channel(PENDING);
        let alerter = Arc::new(Alerter {
            config,
            sender,
            queues,
            named: Mutex::new(HashMap::new()),
            pending,
        });
        rt.spawn(alerter.clone().follow(events));
        rt.spawn(alerter.clone().enrich(rx));
        rt.spawn(alerter.clone().refresh_named());
        Some(alerter)
    }

    fn db(&self) -> &DatabaseConnection {
        self.sender
            .db
            .as_ref()
            .expect("an alerter has its database")
    }

    /// Whether some route may take `event` for `task`: the cheap check made for every event.
    fn wanted(&self, event: AlertEvent, task: &str) -> bool {
        self.config.may_take(event, task)
            || self
                .named
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(task)
                .is_some_and(|names| {
                    names
                        .iter()
                        .any(|n| self.config.route(n).is_some_and(|r| r.takes(event)))
                })
    }

    /// Keeps the list of tasks that name routes of their own fresh.
    async fn refresh_named(self: Arc<Self>) {
        loop {
            match store::tasks_naming_alert_routes(self.db()).await {
                Ok(named) => {
                    *self.named.lock().unwrap_or_else(PoisonError::into_inner) = named;
                }
                Err(e) => {
                    tracing::debug!(target: "cronmesh::alerts", "could not read the tasks' own alert routes: {e}")
                }
            }
            tokio::time::sleep(NAMED_REFRESH).await;
        }
    }

    /// Reads the node's run events and passes on those worth an alert.
    async fn follow(self: Arc<Self>, mut events: RunEvents) {
        while let Some(event) = events.next().await {
            let pending = match event {
                RunEvent::RunFinished {
                    task,
                    run_id,
                    fire_time,
                    attempt,
                    status,
                    duration,
                    error,
                } => {
                    let event = match AlertEvent::of_status(status) {
                        Some(e) => e,
                        None if status == crate::RunStatus::Succeeded => AlertEvent::Recovered,
                        None => continue,
                    };
                    Pending {
                        event,
                        task,
                        run_id: Some(run_id),
                        fire_time: Some(fire_time),
                        status: Some(status.as_str().to_owned()),
                        attempt: Some(attempt),
                        duration_ms: Some(duration.as_millis() as u64),
                        error,
                    }
                }
                RunEvent::Skipped {
                    task,
                    fire_time,
                    status: crate::RunStatus::Misfired,
                    reason,
                } => Pending {
                    event: AlertEvent::Misfired,
                    task,
                    run_id: None,
                    fire_time: Some(fire_time),
                    status: Some("misfired".to_owned()),
                    attempt: None,
                    duration_ms: None,
                    error: Some(reason),
                },
                RunEvent::Misfired {
                    task,
                    count,
                    latest,
                } => Pending {
                    event: AlertEvent::Misfired,
                    task,
                    run_id: None,
                    fire_time: Some(latest),
                    status: Some("misfired".to_owned()),
                    attempt: None,
                    duration_ms: None,
                    error: Some(format!(
                        "{count} fires were missed while no node ran the task; its misfire policy dropped them (the latest shown)"
                    )),
                },
                RunEvent::Lagged { missed } => {
                    for _ in 0..missed {
                        self.sender.metrics.alert("events_missed");
                    }
                    tracing::warn!(target: "cronmesh::alerts", missed, "the alerter fell behind the node's run events; some outcomes were not considered for alerts");
                    continue;
                }
                RunEvent::NodeStopped => break,
                _ => continue,
            };
            if !self.wanted(pending.event, &pending.task) {
                continue;
            }
            self.sender.outstanding.fetch_add(1, Ordering::SeqCst);
            if self.pending.try_send(pending).is_err() {
                self.sender.outstanding.fetch_sub(1, Ordering::SeqCst);
                self.sender.metrics.alert("events_missed");
            }
        }
    }

    /// Enriches pending alerts one at a time and queues them on their routes.
    async fn enrich(self: Arc<Self>, mut rx: mpsc::Receiver<Pending>) {
        while let Some(p) = rx.recv().await {
            self.enrich_one(p).await;
            self.sender.outstanding.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Waits (at most `within`) until every alert the node has accepted is delivered or given
    /// up: a shutdown's interrupted runs are reported before the node goes.
    pub(crate) async fn drain(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        // The last outcomes may still be on their way through the event broadcast.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while self.sender.outstanding.load(Ordering::SeqCst) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.sender.outstanding.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(target: "cronmesh::alerts", left, "alerts not delivered before the node stopped");
        }
    }

    /// Enriches one pending alert and queues it on its routes.
    async fn enrich_one(&self, p: Pending) {
        if p.event == AlertEvent::Recovered {
            // A recovery is a success after a failure; most successes are not.
            let Some(fire) = p.fire_time else { return };
            // The run before may still be on its way to the database.
            let failed = await_record(|| async {
                match store::failed_before(self.db(), &p.task, fire.timestamp_millis()).await {
                    Ok(Some(failed)) => ControlFlow::Break(failed),
                    Ok(None) => ControlFlow::Continue(()),
                    Err(e) => {
                        tracing::debug!(target: "cronmesh::alerts", task = %p.task, "could not read the outcome before a success: {e}");
                        ControlFlow::Break(false)
                    }
                }
            })
            .await;
            if failed != Some(true) {
                return;
            }
        }
        if p.event == AlertEvent::Misfired && !self.recorded_here(&p).await {
            // Every node plans the catch-up of missed fires; the one whose `misfired` row
            // was written alerts.
            return;
        }
        let output_tail = match (&p.run_id, p.event.is_bad()) {
            (Some(run), true) => match self.recorded(run).await {
                Recorded::As(status, output) => {
                    // Only what the database holds is alerted: a node whose lock was lost
                    // while it was paused has its late outcome refused by the fence (the peer
                    // that settled the fire alerts on that).
                    if p.status.as_deref() != Some(status.as_str()) {
                        tracing::debug!(target: "cronmesh::alerts", task = %p.task, run = %run, "not alerted: the run is recorded as {}", status.as_str());
                        return;
                    }
                    output
                }
                Recorded::TakenOver => return,
                Recorded::NotYet => None,
            },
            _ => None,
        };
        let alert = Alert {
            event: p.event,
            task: p.task,
            owner: String::new(),
            zone: None,
            node: self.sender.node.clone(),
            run_id: p.run_id,
            fire_time: p.fire_time,
            status: p.status,
            attempt: p.attempt,
            duration_ms: p.duration_ms,
            error: p.error,
            output_tail,
            suppressed: 0,
            at: Utc::now(),
        };
        self.route(alert).await;
    }

    /// Whether this node wrote the `misfired` row of the fire (waits for it a little).
    async fn recorded_here(&self, p: &Pending) -> bool {
        let Some(fire) = p.fire_time else {
            return false;
        };
        await_record(|| async {
            match store::run_at(self.db(), &p.task, fire.timestamp_millis()).await {
                Ok(Some(run)) => ControlFlow::Break(
                    run.status == crate::RunStatus::Misfired && run.node_id == self.sender.node,
                ),
                Ok(None) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(false),
            }
        })
        .await
        .unwrap_or(false)
    }

    /// How a run is recorded (waits a little for its outcome).
    async fn recorded(&self, run_id: &str) -> Recorded {
        await_record(|| async {
            match store::get_run(self.db(), run_id).await {
                Ok(run) if run.status != crate::RunStatus::Running => {
                    ControlFlow::Break(Recorded::As(run.status, run.output))
                }
                Ok(_) => ControlFlow::Continue(()),
                // A take-over gives the row a new run id: this claim's outcome is not the record.
                Err(store::StoreError::NotFound { .. }) => ControlFlow::Break(Recorded::TakenOver),
                Err(_) => ControlFlow::Break(Recorded::NotYet),
            }
        })
        .await
        .unwrap_or(Recorded::NotYet)
    }

    /// Completes an alert from its task (owner, zone, the routes it names) and queues it on
    /// every route that takes it; returns a receiver per queued route.
    async fn route(&self, mut alert: Alert) -> Vec<oneshot::Receiver<Outcome>> {
        let mut named = Vec::new();
        if let Ok(task) = store::get_task(self.db(), &alert.task).await {
            let decl = task.decl();
            alert.owner = decl.owner.clone();
            alert.zone = task
                .row
                .trigger_json
                .as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|v| v["timezone"].as_str().and_then(|z| z.parse().ok()));
            named = decl.alert_routes;
        }
        let mut waits = Vec::new();
        for route in &self.config.routes {
            if !route.takes(alert.event)
                || !(route.matches(&alert.task, &alert.owner) || named.contains(&route.name))
            {
                continue;
            }
            if let Some(queue) = self.queues.get(&route.name) {
                let (done, wait) = oneshot::channel();
                queue.push(
                    &route.name,
                    &self.sender,
                    Queued {
                        alert: alert.clone(),
                        done: Some(done),
                    },
                );
                waits.push(wait);
            }
        }
        waits
    }

    /// The dead-man check: a `silent` alert for every task silent past its limit that has not
    /// had one delivered since its silence began (a delivery that failed is tried again at the
    /// next check). Queued on the routes, not waited for. Returns how many were queued.
    async fn check_silence(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let silent = store::silent_tasks(self.db(), now)
            .await
            .map_err(|e| e.to_string())?;
        let mut alerted = 0;
        for s in silent {
            let limit = s.task.alert_if_no_success_for_ms.unwrap_or_default() / 1000;
            let since = match s.last_success {
                Some(t) => format!(
                    "its last success was the fire at {}",
                    scheduler_core::rfc3339(t)
                ),
                None => format!(
                    "it has never succeeded since it was created at {}",
                    scheduler_core::rfc3339(s.silent_since)
                ),
            };
            let alert = Alert {
                event: AlertEvent::Silent,
                task: s.task.name.clone(),
                owner: String::new(),
                zone: None,
                node: self.sender.node.clone(),
                run_id: None,
                fire_time: s.last_success,
                status: s.task.last_status.clone(),
                attempt: None,
                duration_ms: None,
                error: Some(format!(
                    "no success for more than {limit} s (alert_if_no_success_for): {since}"
                )),
                output_tail: None,
                suppressed: 0,
                at: now,
            };
            // Queued, not waited for: one slow route must not hold up the others' alerts.
            alerted += self.route(alert).await.len();
        }
        Ok(alerted)
    }
}

/// The dead-man check as a built-in task (`cronmesh.alert_silence`, every minute, run once
/// across the cluster like any task). Declared enabled where alert routes are configured
/// (every node of a cluster should have the same `[alerts]`); on a node without routes a run
/// of it does nothing.
pub(crate) fn silence_check_task(
    tasks: CodeTasks,
    alerter: Arc<OnceLock<Arc<Alerter>>>,
    routes_configured: bool,
) -> CodeTasks {
    let handler: Arc<dyn TaskHandler> = Arc::new(move |ctx: TaskContext| {
        let alerter = alerter.get().cloned();
        async move {
            let Some(alerter) = alerter else {
                return Ok(());
            };
            let alerted = alerter
                .check_silence(ctx.fire_time)
                .await
                .map_err(TaskFailure::new)?;
            if alerted > 0 {
                ctx.span().in_scope(|| {
                    tracing::info!(target: "cron_task", alerted, "silent tasks alerted");
                });
            }
            Ok::<(), TaskFailure>(())
        }
    });
    let mut decl = scheduler_core::TaskDecl::cron("cronmesh.alert_silence", "0 * * * * *")
        .owner("cronmesh")
        .description(
            "Alerts (`silent`) on tasks that have had no success for their alert_if_no_success_for",
        )
        .misfire(scheduler_core::MisfirePolicy::Skip)
        .origin("built-in");
    decl.enabled = routes_configured;
    tasks.with_handler(decl, "cronmesh::alert_silence", handler)
}
