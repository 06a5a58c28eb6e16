//! [`Node`]: the handle a started node gives back, for actix code and plain async code alike.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entity::scheduler_node::NodeState;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::HandlerRuntime;
use super::config::NodeConfig;
use crate::error::Error;
use crate::events::{RunEvent, RunEvents, RunEventsSender};
use crate::lock::LockActor;
use crate::metrics::{Metered, Metrics, MetricsSnapshot};
use crate::persistence::{Flush, PersistenceActor};
use crate::scheduler::{
    ListScheduled, Pause, Reload, Resume, ScheduledTaskView, SchedulerActor, Shutdown, TriggerNow,
};

/// A running node, as [`NodeBuilder::start`](crate::NodeBuilder::start) gives it back: the
/// owner, which alone can [`Node::shutdown`] it. It derefs to a [`NodeHandle`] (hand out
/// clones of it with [`Node::handle`]), whose methods ask and steer the node.
///
/// Every method that asks an actor returns a future that borrows nothing, with this crate's
/// [`Error`]: keep it, spawn it, `.await` it in plain async code, or turn it into an actor
/// future with `.into_actor(self)` inside an actix actor. The actors' addresses
/// ([`NodeHandle::scheduler`] and the others) are [`Metered`]: what is sent through them counts
/// in the mailbox metrics.
///
/// ```no_run
/// # async fn example() -> Result<(), scheduler_actors::Error> {
/// use scheduler_actors::{CodeTasks, NodeBuilder, NodeConfig};
///
/// // Inside a running actix System (for example under #[actix::main]):
/// let node = NodeBuilder::new(NodeConfig::default())
///     .code_tasks(CodeTasks::from_inventory())
///     .start()
///     .await?;
/// for task in node.list_scheduled().await? {
///     println!("{} next fires at {:?}", task.name, task.next_fire);
/// }
/// node.pause().await?;
/// node.resume().await?;
/// node.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Node {
    pub(super) handle: NodeHandle,
    pub(super) lock: Metered<LockActor>,
    pub(super) persistence: Metered<PersistenceActor>,
    pub(super) db: DatabaseConnection,
    pub(super) http_addr: Option<SocketAddr>,
    pub(super) config: NodeConfig,
    pub(super) stopping: CancellationToken,
    pub(super) interrupt: CancellationToken,
    pub(super) handler_runtime: HandlerRuntime,
    pub(super) http: Option<actix_web::dev::ServerHandle>,
    /// Alerts, when routes are configured.
    pub(super) alerter: Option<Arc<crate::alerts::Alerter>>,
}

/// What the application's own actors and tasks hold to ask and steer a node: cheap to clone,
/// `Send`, and outliving nothing (a node that has stopped answers [`Error::Mailbox`]). A
/// [`Node`] derefs to its handle, so every method here is also a method of the node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) id: String,
    pub(super) scheduler: Metered<SchedulerActor>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) events: RunEventsSender,
    pub(super) running: Arc<AtomicUsize>,
}

impl std::ops::Deref for Node {
    type Target = NodeHandle;

    fn deref(&self) -> &NodeHandle {
        &self.handle
    }
}

impl NodeHandle {
    /// This node's id (`node.id`, or host name and pid).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scheduler's address.
    pub fn scheduler(&self) -> &Metered<SchedulerActor> {
        &self.scheduler
    }

    /// What the scheduler holds: every task it schedules on this node, its next fire and its
    /// runs in progress here. The built-in tasks (`cronmesh.*`) are among them, marked
    /// `builtin`.
    pub fn list_scheduled(
        &self,
    ) -> impl Future<Output = Result<Vec<ScheduledTaskView>, Error>> + 'static {
        let reply = self.scheduler.send(ListScheduled);
        async move { Ok(reply.await?) }
    }

    /// Stops firing on this node until [`NodeHandle::resume`]. Runs in progress go on. Other nodes
    /// of a cluster keep firing.
    pub fn pause(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let reply = self.scheduler.send(Pause);
        async move { Ok(reply.await?) }
    }

    /// Fires again after [`NodeHandle::pause`]. Fires that fell due while paused go through each
    /// task's misfire policy: with the default `fire_once` the latest missed fire of each task
    /// runs right away (as after a node's downtime), with `skip` none does.
    pub fn resume(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let reply = self.scheduler.send(Resume);
        async move { Ok(reply.await?) }
    }

    /// Reads the tasks from the database again now (a node does so by itself within a
    /// second of a change).
    pub fn reload(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let reply = self.scheduler.send(Reload);
        async move { Ok(reply.await?) }
    }

    /// Fires `task` once now, besides its schedule; [`Error::NotScheduled`] when this node
    /// does not schedule a task of that name.
    pub fn run_now(&self, task: &str) -> impl Future<Output = Result<(), Error>> + 'static {
        let reply = self.scheduler.send(TriggerNow {
            task: task.to_owned(),
        });
        async move { reply.await? }
    }

    /// The node's metrics now: every actor's mailbox (received, handled, depth, handling
    /// time, restarts) and the scheduler's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The same metrics in the Prometheus text format (what `GET /metrics` serves).
    pub fn prometheus(&self) -> String {
        self.metrics.prometheus()
    }

    /// Runs in progress on this node.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// A new subscription to this node's run events (see [`RunEvents`]). Events from before
    /// the call are not in it.
    pub fn subscribe(&self) -> RunEvents {
        self.events.subscribe()
    }
}

impl Node {
    /// The admin HTTP server's address, if it runs (with the port it got when `http.bind`
    /// asked for port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The node's database pool (read what it wrote with the `store` crate).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The lock actor's address.
    pub fn lock(&self) -> &Metered<LockActor> {
        &self.lock
    }

    /// The persistence actor's address.
    pub fn persistence(&self) -> &Metered<PersistenceActor> {
        &self.persistence
    }

    /// A handle to give the application's own actors and tasks (see [`NodeHandle`]).
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Graceful shutdown: stop firing, let running fires finish within the grace period,
    /// interrupt the rest (recorded `interrupted`, their locks freed for a peer), write out
    /// everything buffered, and mark the node stopped.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        tracing::info!(target: "cron_task", node = %self.handle.id, running = self.running(), grace_secs = self.config.shutdown_grace.as_secs(), "shutting down");
        self.stopping.cancel();
        self.handle.scheduler.send(Shutdown).await?;
        if let Err(e) = store::set_node_state(&self.db, &self.handle.id, NodeState::Draining).await
        {
            tracing::warn!(target: "cron_task", node = %self.handle.id, error = %e, "could not mark the node draining");
        }
        let deadline = Instant::now() + self.config.shutdown_grace;
        while self.running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.running() > 0 {
            tracing::warn!(target: "cron_task", node = %self.handle.id, running = self.running(), "grace period over; interrupting running fires");
            self.interrupt.cancel();
            let hard = Instant::now() + Duration::from_secs(5);
            while self.running() > 0 && Instant::now() < hard {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let left = self
            .persistence
            .send(Flush {
                within: Duration::from_secs(10),
            })
            .await?;
        if left > 0 {
            tracing::error!(target: "cron_task", node = %self.handle.id, unwritten = left, "database unreachable at shutdown; these run records are lost");
        }
        // The outcomes just written may have alerts on their way (interrupted runs).
        if let Some(alerter) = &self.alerter {
            alerter.drain(Duration::from_secs(5)).await;
        }
        if let Err(e) = store::set_node_state(&self.db, &self.handle.id, NodeState::Stopped).await {
            tracing::warn!(target: "cron_task", error = %e, "could not mark the node stopped");
        }
        if let Some(http) = self.http.take() {
            http.stop(true).await;
        }
        self.handler_runtime.stop();
        tracing::info!(target: "cron_task", node = %self.handle.id, "node stopped");
        Ok(())
        // Drop sends NodeStopped.
    }
}

impl Drop for Node {
    /// Ends every subscription: after `shutdown`, or when the handle is dropped without it
    /// (the actors then stop with the System).
    fn drop(&mut self) {
        self.handle.events.send(|| RunEvent::NodeStopped);
    }
}
