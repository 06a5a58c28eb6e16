//! A node: the four actors wired together, started inside the caller's actix `System`.
//!
//! ```no_run
//! # async fn example() -> Result<(), scheduler_actors::NodeError> {
//! use scheduler_actors::{CodeTasks, NodeBuilder, NodeConfig};
//!
//! // Inside a running actix System (e.g. under #[actix::main]):
//! let node = NodeBuilder::new(NodeConfig::default())
//!     .code_tasks(CodeTasks::from_inventory())
//!     .start()
//!     .await?;
//! // ... node.scheduler, node.lock, node.persistence are plain actor addresses ...
//! node.shutdown().await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use entity::scheduler_node::NodeState;
use scheduler_core::{Registry, TaskDecl};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::builtin::builtin_handlers;
use crate::executor::ExecutorDeps;
use crate::handler::{TaskContext, TaskFailure, TaskHandler};
use crate::lock::{LockActor, LockBackend, MemoryLockBackend};
use crate::metrics::{Metered, Metrics};
use crate::persistence::{Flush, PersistenceActor};
use crate::redis_lock::RedisLockBackend;
use crate::registration::CodeTasks;
use crate::scheduler::{InitialTasks, SchedulerActor, Shutdown};
use crate::store::{self, NodeInfo, StoreError};

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The database.
    #[error("database {url}: {source}")]
    Database {
        /// URL without password.
        url: String,
        /// The error.
        source: StoreError,
    },
    /// The code tasks have problems (every one is listed).
    #[error("{} problem(s) with the registered tasks:\n  - {}", .0.len(), .0.join("\n  - "))]
    Registry(Vec<String>),
    /// The admin HTTP server could not bind.
    #[error("admin HTTP server on {addr}: {source}")]
    Http {
        /// Address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The lock backend could not be set up.
    #[error("{0}")]
    Lock(crate::lock::LockError),
    /// The handler runtime could not start.
    #[error("handler runtime: {0}")]
    Runtime(std::io::Error),
    /// An actor stopped answering.
    #[error("actor unavailable: {0}")]
    Mailbox(#[from] MailboxError),
}

/// Everything a node needs to know. `Default` is the embedded single node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Database URL.
    pub database_url: String,
    /// Node id; `None` = host name and pid.
    pub node_id: Option<String>,
    /// Redis URL for cluster locks; `None` = in-process locks (a single node).
    pub redis_url: Option<String>,
    /// Prefix of lock keys.
    pub lock_prefix: String,
    /// A node whose heartbeat is older than this is dead: its running fires are abandoned, or
    /// re-run elsewhere where the task has `recover`.
    pub node_timeout: Duration,
    /// Admin HTTP address; `None` = no server.
    pub http_bind: Option<SocketAddr>,
    /// How long running fires may finish at shutdown before they are interrupted.
    pub shutdown_grace: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Whether `shell` may run here.
    pub shell_enabled: bool,
    /// How long run records are kept (the `cronmesh.prune_runs` task).
    pub run_retention: Duration,
    /// Whether the `demo.heartbeat` task is registered.
    pub demo_enabled: bool,
    /// Writes kept while the database is down.
    pub persistence_buffer: usize,
    /// Threads of the runtime handlers run on.
    pub handler_threads: usize,
    /// How long a finished fire's lock key is kept.
    pub lock_keep: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            database_url: "sqlite://cronmesh.db".to_owned(),
            node_id: None,
            redis_url: None,
            lock_prefix: "cronmesh".to_owned(),
            node_timeout: Duration::from_secs(10),
            http_bind: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            shutdown_grace: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            shell_enabled: true,
            run_retention: Duration::from_secs(30 * 86_400),
            demo_enabled: false,
            persistence_buffer: 100_000,
            handler_threads: 4,
            lock_keep: Duration::from_secs(60),
        }
    }
}

/// Builds and starts a node.
pub struct NodeBuilder {
    config: NodeConfig,
    code_tasks: CodeTasks,
    extra_handlers: Vec<(String, Arc<dyn TaskHandler>)>,
    lock_backend: Option<Arc<dyn LockBackend>>,
}

/// A running node: the addresses of its actors and what it needs to shut down.
pub struct Node {
    /// This node's id.
    pub node_id: String,
    /// The scheduler (its address counts what it is sent, for the mailbox metrics).
    pub scheduler: Metered<SchedulerActor>,
    /// The lock actor.
    pub lock: Addr<LockActor>,
    /// The persistence actor.
    pub persistence: Addr<PersistenceActor>,
    /// Metrics of every actor.
    pub metrics: Arc<Metrics>,
    /// The database.
    pub db: DatabaseConnection,
    /// The admin HTTP server's address, if it runs.
    pub http_addr: Option<SocketAddr>,
    config: NodeConfig,
    running: Arc<AtomicUsize>,
    stopping: CancellationToken,
    interrupt: CancellationToken,
    handler_runtime: Option<tokio::runtime::Runtime>,
    http: Option<actix_web::dev::ServerHandle>,
}

fn node_info(node_id: &str, admin: Option<SocketAddr>) -> NodeInfo {
    NodeInfo {
        node_id: node_id.to_owned(),
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        admin_url: admin.map(|a| format!("http://{a}")),
    }
}

fn node_id_default() -> String {
    format!(
        "{}-{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// The tasks every node has: run-record pruning, and the demo heartbeat when enabled.
fn maintenance_tasks(db: &DatabaseConnection, config: &NodeConfig) -> CodeTasks {
    let retention = config.run_retention;
    let prune_db = db.clone();
    let prune: Arc<dyn TaskHandler> = Arc::new(move |ctx: TaskContext| {
        let db = prune_db.clone();
        async move {
            let before = ctx.fire_time
                - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            let deleted = store::prune_runs(&db, before)
                .await
                .map_err(|e| TaskFailure::new(e.to_string()))?;
            tracing::info!(target: "cron_task", task = %ctx.task, run_id = %ctx.run_id, deleted, "pruned run records older than {}", scheduler_core::rfc3339(before));
            Ok::<(), TaskFailure>(())
        }
    });
    let mut tasks = CodeTasks::new().with_handler(
        TaskDecl::cron("cronmesh.prune_runs", "17 3 * * *")
            .owner("cronmesh")
            .description("Deletes finished run records older than runs.retention_days")
            .misfire(scheduler_core::MisfirePolicy::FireOnce)
            .origin("built-in"),
        "cronmesh::prune_runs",
        prune,
    );
    if config.demo_enabled {
        let demo: Arc<dyn TaskHandler> = Arc::new(|ctx: TaskContext| async move {
            tracing::info!(target: "cron_task", task = %ctx.task, run_id = %ctx.run_id, node = %ctx.node, "demo heartbeat: the scheduler is running");
            Ok::<(), TaskFailure>(())
        });
        tasks = tasks.with_handler(
            TaskDecl::cron("demo.heartbeat", "*/10 * * * * *")
                .owner("cronmesh")
                .description("Shows the scheduler working; turn off with demo.enabled = false")
                .misfire(scheduler_core::MisfirePolicy::Skip)
                .origin("built-in"),
            "cronmesh::demo_heartbeat",
            demo,
        );
    }
    tasks
}

impl NodeBuilder {
    /// A node with `config` and no code tasks yet.
    pub fn new(config: NodeConfig) -> Self {
        NodeBuilder {
            config,
            code_tasks: CodeTasks::new(),
            extra_handlers: Vec::new(),
            lock_backend: None,
        }
    }

    /// The code tasks this node runs (e.g. [`CodeTasks::from_inventory`]).
    pub fn code_tasks(mut self, tasks: CodeTasks) -> Self {
        self.code_tasks = tasks;
        self
    }

    /// A handler for runtime tasks (tasks added with the CLI that name `name` as handler),
    /// besides the built-ins and the code tasks' own.
    pub fn handler(mut self, name: &str, handler: Arc<dyn TaskHandler>) -> Self {
        self.extra_handlers.push((name.to_owned(), handler));
        self
    }

    /// The lock backend (default: in-process memory, for a single node).
    pub fn lock_backend(mut self, backend: Arc<dyn LockBackend>) -> Self {
        self.lock_backend = Some(backend);
        self
    }

    /// Connects, migrates, syncs the code tasks, and starts the actors in the current actix
    /// `System`.
    pub async fn start(self) -> Result<Node, NodeError> {
        let config = self.config;
        let url = store::redact_url(&config.database_url);
        let db_err = |source: StoreError| NodeError::Database {
            url: url.clone(),
            source,
        };
        let db = store::connect(&config.database_url)
            .await
            .map_err(|e| db_err(e.into()))?;
        store::migrate(&db).await.map_err(|e| db_err(e.into()))?;

        // Handlers: built-ins, then maintenance and code tasks (which win on a name clash).
        let maintenance = maintenance_tasks(&db, &config);
        let mut handlers = builtin_handlers(config.shell_enabled);
        handlers.extend(self.extra_handlers);
        let mut decls: Vec<TaskDecl> = Vec::new();
        for tasks in [&maintenance, &self.code_tasks] {
            for decl in tasks.decls() {
                if let Some(h) = tasks.handler(&decl.handler) {
                    handlers.insert(decl.handler.clone(), h);
                }
                decls.push(decl.clone());
            }
        }
        let confs = store::trigger_confs(&db).await.map_err(db_err)?;
        let registry = Registry::build(decls.clone(), confs);
        if !registry.is_clean() {
            return Err(NodeError::Registry(
                registry
                    .problems()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ));
        }
        let handlers = Arc::new(handlers);
        let known = handlers.clone();
        let change = store::sync_code_tasks(&db, &decls, &|h| known.contains_key(h))
            .await
            .map_err(db_err)?;
        for name in &change.conflicts {
            tracing::warn!(target: "cron_task", task = %name, "a runtime task has the name of a code task; the runtime task is kept and the code task is not scheduled");
        }
        for name in &change.orphaned {
            tracing::warn!(target: "cron_task", task = %name, "task marked orphaned: its handler is not in this binary");
        }

        let node_id = config.node_id.clone().unwrap_or_else(node_id_default);
        let metrics = Metrics::new();
        let handler_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.handler_threads.max(1))
            .thread_name("cronmesh-handler")
            .enable_all()
            .build()
            .map_err(NodeError::Runtime)?;

        let lock_backend: Arc<dyn LockBackend> = match (self.lock_backend, &config.redis_url) {
            (Some(backend), _) => backend,
            (None, Some(url)) => Arc::new(
                RedisLockBackend::connect(url, Duration::from_secs(2), Duration::from_secs(2))
                    .map_err(NodeError::Lock)?,
            ),
            (None, None) => Arc::new(MemoryLockBackend::new()),
        };
        let has_peers = lock_backend.name() != "memory";
        let lock_metrics = metrics.actor("LockActor");
        // The actors that own connections run under supervisors: stopped, they come back
        // with their held locks and buffered writes.
        let lock = {
            let (backend, id, m) = (lock_backend, node_id.clone(), metrics.clone());
            Supervisor::start(move |_| LockActor::new(backend, id, m))
        };
        let persistence = {
            let (db, id, bound, m) = (
                db.clone(),
                node_id.clone(),
                config.persistence_buffer,
                metrics.clone(),
            );
            let every = config.heartbeat_interval;
            Supervisor::start(move |_| {
                PersistenceActor::new(db, id, bound, m).with_heartbeat(every)
            })
        };
        let running = Arc::new(AtomicUsize::new(0));
        let interrupt = CancellationToken::new();
        let stopping = CancellationToken::new();
        let deps = Arc::new(ExecutorDeps {
            node_id: node_id.clone(),
            lock_prefix: config.lock_prefix.clone(),
            lock: Metered::new(lock.clone(), lock_metrics),
            persistence: Metered::new(persistence.clone(), metrics.actor("PersistenceActor")),
            handler_runtime: handler_runtime.handle().clone(),
            has_peers,
            stopping: stopping.clone(),
            interrupt: interrupt.clone(),
            running: running.clone(),
            lock_keep: config.lock_keep,
            metrics: metrics.clone(),
            actor_metrics: metrics.actor("ExecutorActor"),
        });

        // Settle what an earlier process of this node left running and register as running
        // before the scheduler can claim anything.
        let settled = store::settle_previous_runs(&db, &node_id, Utc::now())
            .await
            .map_err(db_err)?;
        if settled > 0 {
            tracing::warn!(target: "cron_task", node = %node_id, runs = settled, "runs left running by an earlier process of this node were settled (interrupted or abandoned)");
        }
        store::register_node(&db, &node_info(&node_id, config.http_bind), Utc::now())
            .await
            .map_err(db_err)?;

        let initial = InitialTasks::read(&db, &handlers).await.map_err(db_err)?;
        let mut scheduler = SchedulerActor::new(
            db.clone(),
            handlers,
            deps,
            initial,
            config.node_timeout,
            metrics.actor("SchedulerActor"),
        );
        if let Some(url) = &config.redis_url {
            let channel = crate::notices::changes_channel(&config.lock_prefix);
            scheduler = scheduler.with_change_notices(url.clone(), channel);
        }
        let scheduler = scheduler.start();
        let (http_addr, http) = match config.http_bind {
            None => (None, None),
            Some(addr) => {
                let (bound, handle) = crate::admin_http::start(
                    addr,
                    metrics.clone(),
                    Metered::new(scheduler.clone(), metrics.actor("SchedulerActor")),
                    node_id.clone(),
                )
                .map_err(|source| NodeError::Http { addr, source })?;
                (Some(bound), Some(handle))
            }
        };
        if http_addr.is_some() && http_addr != config.http_bind {
            // Bound to port 0: record the port actually taken.
            store::register_node(&db, &node_info(&node_id, http_addr), Utc::now())
                .await
                .map_err(db_err)?;
        }

        tracing::info!(target: "cron_task", node = %node_id, database = %url, http = ?http_addr, "node started");
        Ok(Node {
            node_id,
            scheduler: Metered::new(scheduler, metrics.actor("SchedulerActor")),
            lock,
            persistence,
            metrics,
            db,
            http_addr,
            config,
            running,
            stopping,
            interrupt,
            handler_runtime: Some(handler_runtime),
            http,
        })
    }
}

impl Node {
    /// Runs in progress on this node.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Graceful shutdown: stop firing, let running fires finish within the grace period,
    /// interrupt the rest (recorded `interrupted`, their locks freed for a peer), write out
    /// everything buffered, and mark the node stopped.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        tracing::info!(target: "cron_task", node = %self.node_id, running = self.running(), grace_secs = self.config.shutdown_grace.as_secs(), "shutting down");
        self.stopping.cancel();
        self.scheduler.send(Shutdown).await?;
        if let Err(e) = store::set_node_state(&self.db, &self.node_id, NodeState::Draining).await {
            tracing::warn!(target: "cron_task", node = %self.node_id, error = %e, "could not mark the node draining");
        }
        let deadline = Instant::now() + self.config.shutdown_grace;
        while self.running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.running() > 0 {
            tracing::warn!(target: "cron_task", node = %self.node_id, running = self.running(), "grace period over; interrupting running fires");
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
            tracing::error!(target: "cron_task", node = %self.node_id, unwritten = left, "database unreachable at shutdown; these run records are lost");
        }
        if let Err(e) = store::set_node_state(&self.db, &self.node_id, NodeState::Stopped).await {
            tracing::warn!(target: "cron_task", error = %e, "could not mark the node stopped");
        }
        if let Some(http) = self.http.take() {
            http.stop(true).await;
        }
        if let Some(rt) = self.handler_runtime.take() {
            rt.shutdown_background();
        }
        tracing::info!(target: "cron_task", node = %self.node_id, "node stopped");
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A runtime may not be dropped from async code; let its threads go in the background.
        if let Some(rt) = self.handler_runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Handlers by name, for callers that want to check `handler_args` the way a node would.
pub fn known_handlers(
    code_tasks: &CodeTasks,
    shell_enabled: bool,
) -> HashMap<String, Arc<dyn TaskHandler>> {
    let mut handlers = builtin_handlers(shell_enabled);
    for decl in code_tasks.decls() {
        if let Some(h) = code_tasks.handler(&decl.handler) {
            handlers.insert(decl.handler.clone(), h);
        }
    }
    handlers
}
