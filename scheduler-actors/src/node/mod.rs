//! A node: the four actors wired together, started inside the caller's actix `System`
//! ([`NodeBuilder`]), and the handle it gives back ([`Node`], in `handle.rs`).

mod config;
mod handle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use entity::scheduler_node::NodeState;
use scheduler_core::{Registry, TaskDecl};
use store::{NodeInfo, StoreError};
use tokio_util::sync::CancellationToken;

pub use self::config::NodeConfig;
pub use self::handle::{Node, NodeHandle};
use crate::error::Error;
use crate::events::{DEFAULT_EVENT_BUFFER, RunEventsSender};
use crate::executor::{ExecutorActor, ExecutorDeps};
use crate::health::Health;
use crate::lock::{LockActor, LockBackend, MemoryLockBackend, RedisLockBackend};
use crate::metrics::{Metered, Metrics};
use crate::persistence::PersistenceActor;
use crate::scheduler::{InitialTasks, SchedulerActor, Shutdown};
use crate::tasks::maintenance::maintenance_tasks;
use crate::tasks::{AppData, CodeTasks, TaskHandler, handler_table};

/// Builds and starts a node inside the caller's actix `System`; see [`Node`] for what it
/// gives back.
pub struct NodeBuilder {
    config: NodeConfig,
    code_tasks: CodeTasks,
    extra_handlers: Vec<(String, Arc<dyn TaskHandler>)>,
    lock_backend: Option<Arc<dyn LockBackend>>,
    app_data: AppData,
    event_buffer: usize,
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

impl NodeBuilder {
    /// A node with `config` and no code tasks yet.
    pub fn new(config: NodeConfig) -> Self {
        NodeBuilder {
            config,
            code_tasks: CodeTasks::new(),
            extra_handlers: Vec::new(),
            lock_backend: None,
            app_data: AppData::default(),
            event_buffer: DEFAULT_EVENT_BUFFER,
        }
    }

    /// A value every handler can reach with [`TaskContext::data`](crate::TaskContext::data)
    /// (one per type; a second value of a type replaces the first): a database pool, a
    /// client, the application's configuration.
    pub fn app_data<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.app_data.insert(value);
        self
    }

    /// How many run events each subscriber may fall behind before it misses the oldest
    /// (default [`DEFAULT_EVENT_BUFFER`]).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
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
    pub async fn start(self) -> Result<Node, Error> {
        let config = self.config;
        let url = store::redact_url(&config.database_url);
        let db_err = |source: StoreError| Error::Database {
            database: url.clone(),
            source,
        };
        let db = store::connect(&config.database_url).await.map_err(db_err)?;
        store::migrate(&db).await.map_err(db_err)?;

        // Handlers: built-ins, extra ones, then maintenance and code tasks (which win on a
        // name clash).
        let alerter_slot = Arc::new(std::sync::OnceLock::new());
        let maintenance = maintenance_tasks(
            &db,
            config.run_retention,
            config.demo_enabled,
            alerter_slot.clone(),
            !config.alerts.routes.is_empty(),
        );
        let code = [&maintenance, &self.code_tasks];
        let handlers = handler_table(
            config.shell_enabled,
            &config.shell_pass_env,
            self.extra_handlers,
            &code,
        );
        let decls: Vec<TaskDecl> = code.iter().flat_map(|t| t.decls()).cloned().collect();
        let confs = store::trigger_confs(&db).await.map_err(db_err)?;
        let registry = Registry::build(decls.clone(), confs);
        if !registry.is_clean() {
            return Err(Error::Registry(registry.problems().to_vec()));
        }
        let handlers = Arc::new(handlers);
        let api_handlers = handlers.clone();
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

        // Everything that can fail on a bad setting or a busy environment happens before any
        // actor starts and before the node says it runs: the admin port is taken now, the
        // lock backend set up, the task rows read.
        if let Some(addr) = config.http_bind
            && !addr.ip().is_loopback()
            && config.api_tokens.is_empty()
        {
            return Err(Error::Http {
                addr,
                source: std::io::Error::other(
                    "not a loopback address and no API token is configured: the operations API would be open to the network",
                ),
            });
        }
        let listener = match config.http_bind {
            None => None,
            Some(addr) => Some(
                std::net::TcpListener::bind(addr).map_err(|source| Error::Http { addr, source })?,
            ),
        };
        let http_addr = match &listener {
            None => None,
            Some(l) => Some(l.local_addr().map_err(|source| {
                Error::Http {
                    addr: config
                        .http_bind
                        .unwrap_or_else(|| ([127, 0, 0, 1], 0).into()),
                    source,
                }
            })?),
        };
        let node_id = config.node_id.clone().unwrap_or_else(node_id_default);
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());

        let lock_backend: Arc<dyn LockBackend> = match (self.lock_backend, &config.redis_url) {
            (Some(backend), _) => backend,
            (None, Some(url)) => Arc::new(RedisLockBackend::connect(
                url,
                Duration::from_secs(2),
                Duration::from_secs(2),
            )?),
            (None, None) => Arc::new(MemoryLockBackend::new()),
        };
        let initial = InitialTasks::read(&db, &handlers).await.map_err(db_err)?;
        let handler_runtime = HandlerRuntime::new(config.handler_threads)?;
        let has_peers = lock_backend.shared_across_nodes();
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
            let (every, health) = (config.heartbeat_interval, health.clone());
            Supervisor::start(move |_| {
                PersistenceActor::new(db, id, bound, m)
                    .with_heartbeat(every)
                    .with_health(health.clone())
            })
        };
        let running = Arc::new(AtomicUsize::new(0));
        let events = RunEventsSender::new(self.event_buffer);
        // The alerter follows the run events from before the first fire.
        let alerter = crate::alerts::Alerter::start(
            config.alerts.clone(),
            db.clone(),
            metrics.clone(),
            node_id.clone(),
            &handler_runtime.handle()?,
            events.subscribe(),
        );
        if let Some(alerter) = &alerter {
            let _ = alerter_slot.set(alerter.clone());
        }
        let interrupt = CancellationToken::new();
        let stopping = CancellationToken::new();
        let deps = Arc::new(ExecutorDeps {
            node_id: node_id.clone(),
            lock_prefix: config.lock_prefix.clone(),
            lock: Metered::new(lock.clone(), metrics.actor::<LockActor>()),
            persistence: Metered::new(persistence.clone(), metrics.actor::<PersistenceActor>()),
            handler_runtime: handler_runtime.handle()?,
            has_peers,
            stopping: stopping.clone(),
            interrupt: interrupt.clone(),
            running: running.clone(),
            lock_keep: config.lock_keep,
            metrics: metrics.clone(),
            health,
            actor_metrics: metrics.actor::<ExecutorActor>(),
            events: events.clone(),
            app_data: self.app_data,
            shadow: config.shadow,
        });

        // Settle what an earlier process of this node left running and register as running
        // before the scheduler can claim anything.
        let settled = store::settle_previous_runs(&db, &node_id, Utc::now())
            .await
            .map_err(db_err)?;
        if settled > 0 {
            tracing::warn!(target: "cron_task", node = %node_id, runs = settled, "runs left running by an earlier process of this node were settled (interrupted or abandoned)");
        }
        store::register_node(&db, &node_info(&node_id, http_addr), Utc::now())
            .await
            .map_err(db_err)?;

        let cluster_paused = store::cluster_pause(&db).await.map_err(db_err)?.paused;
        if cluster_paused {
            tracing::warn!(target: "cron_task", node = %node_id, "the cluster is paused: nothing fires until `cronmesh resume`");
        }
        let mut scheduler = SchedulerActor::new(
            db.clone(),
            handlers,
            deps,
            initial,
            config.node_timeout,
            metrics.actor::<SchedulerActor>(),
        )
        .with_cluster_pause(cluster_paused);
        if let Some(url) = &config.redis_url {
            let channel = crate::change_notices::changes_channel(&config.lock_prefix);
            scheduler = scheduler.with_change_notices(url.clone(), channel);
        }
        let scheduler = Metered::new(scheduler.start(), metrics.actor::<SchedulerActor>());
        let http = match listener {
            None => None,
            Some(listener) => {
                let started = crate::admin_http::start(
                    listener,
                    metrics.clone(),
                    scheduler.clone(),
                    node_id.clone(),
                    crate::api::ApiState {
                        db: db.clone(),
                        tokens: config.api_tokens.clone().into(),
                        metrics: metrics.clone(),
                        handlers: api_handlers,
                        shell_enabled: config.shell_enabled,
                        metrics_public: config.metrics_public,
                    },
                );
                match started {
                    Ok(handle) => Some(handle),
                    Err(source) => {
                        // Registered already: do not leave the row claiming to run.
                        let _ = scheduler.send(Shutdown).await;
                        let _ = store::set_node_state(&db, &node_id, NodeState::Stopped).await;
                        let addr = http_addr.unwrap_or_else(|| ([127, 0, 0, 1], 0).into());
                        return Err(Error::Http { addr, source });
                    }
                }
            }
        };

        tracing::info!(target: "cron_task", node = %node_id, database = %url, http = ?http_addr, "node started");
        Ok(Node {
            handle: NodeHandle {
                id: node_id,
                scheduler,
                metrics: metrics.clone(),
                events,
                running,
            },
            lock: Metered::new(lock, metrics.actor::<LockActor>()),
            persistence: Metered::new(persistence, metrics.actor::<PersistenceActor>()),
            db,
            http_addr,
            config,
            stopping,
            interrupt,
            handler_runtime,
            http,
            alerter,
        })
    }
}

/// The runtime handlers run on, apart from the actors' threads. A tokio runtime may not be
/// dropped inside async code (it panics), and a node is started and stopped inside one; this
/// one lets its threads go in the background whenever it goes, on an error path of the
/// start-up as at shutdown.
struct HandlerRuntime(Option<tokio::runtime::Runtime>);

impl HandlerRuntime {
    fn new(threads: usize) -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("cronmesh-handler")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(HandlerRuntime(Some(rt)))
    }

    fn handle(&self) -> Result<tokio::runtime::Handle, Error> {
        self.0
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| Error::Runtime(std::io::Error::other("the handler runtime was stopped")))
    }

    fn stop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for HandlerRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}
