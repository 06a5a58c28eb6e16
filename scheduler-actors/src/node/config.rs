//! What a node is told: [`NodeConfig`]. `Default` is the embedded single node.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything a node needs to know. `Default` is the embedded single node, with the same
/// values as the `cronmesh` binary's defaults (README, "Configuration"); an application that
/// wants the binary's layered settings (built-in defaults < `cronmesh.toml` < `CRONMESH__*`
/// variables) gets them with `cronmesh::settings::Settings::load(None)?.node_config()`.
#[derive(Debug, Clone, PartialEq)]
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
    /// Tokens of the operations API (`/api/v1`); none = no authentication, for a node whose
    /// admin server is on loopback only.
    pub api_tokens: Vec<crate::api::ApiToken>,
    /// Whether `/metrics` needs no token (`http.metrics_public`).
    pub metrics_public: bool,
    /// How long running fires may finish at shutdown before they are interrupted.
    pub shutdown_grace: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Whether `shell` may run here.
    pub shell_enabled: bool,
    /// The node's own `CRONMESH__*` environment variables `shell` tasks still see (all others
    /// are removed from their environment).
    pub shell_pass_env: Vec<String>,
    /// How long run records are kept (the `cronmesh.prune_runs` task); zero keeps them for
    /// ever (the task is declared disabled).
    pub run_retention: Duration,
    /// Whether the `demo.heartbeat` task is registered.
    pub demo_enabled: bool,
    /// Writes kept while the database is down.
    pub persistence_buffer: usize,
    /// Threads of the runtime handlers run on.
    pub handler_threads: usize,
    /// How long a finished fire's lock key is kept.
    pub lock_keep: Duration,
    /// Every task on this node in shadow mode: fires are recorded as `shadow` and no handler
    /// runs, except a task's fires from its cut-over on.
    pub shadow: bool,
    /// Alert routes (`[alerts]`); none = no alerts.
    pub alerts: crate::alerts::AlertConfig,
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
            api_tokens: Vec::new(),
            metrics_public: true,
            shutdown_grace: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            shell_enabled: true,
            shell_pass_env: Vec::new(),
            run_retention: Duration::from_secs(30 * 86_400),
            demo_enabled: false,
            persistence_buffer: 100_000,
            handler_threads: 4,
            lock_keep: Duration::from_secs(60),
            shadow: false,
            alerts: crate::alerts::AlertConfig::default(),
        }
    }
}
