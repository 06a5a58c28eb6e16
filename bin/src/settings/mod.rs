//! Node configuration, in two steps: the `config` crate merges built-in defaults < the config
//! file < `CRONMESH__SECTION__KEY` environment variables into [`RawSettings`]; validation turns
//! that into [`Settings`], with an error naming the key for every bad value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

pub use store::redact_url;

mod alerts;

use crate::cli::InvalidInput;

/// The config file read when `--config` is not given (if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "cronmesh.toml";
/// The embedded default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cronmesh.db";

/// Settings as written, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSettings {
    database: RawDatabase,
    redis: RawRedis,
    http: RawHttp,
    node: RawNode,
    handlers: RawHandlers,
    runs: RawRuns,
    demo: RawDemo,
    log: RawLog,
    alerts: alerts::RawAlerts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRedis {
    url: Option<String>,
    prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    bind: Option<String>,
    enabled: Option<bool>,
    tokens: Option<Vec<RawToken>>,
    metrics_public: Option<bool>,
}

/// One `[[http.tokens]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: String,
    token_sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNode {
    id: Option<String>,
    shutdown_grace_secs: Option<u64>,
    heartbeat_secs: Option<u64>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHandlers {
    shell_enabled: Option<bool>,
    shell_pass_env: Option<NameList>,
}

/// A list of names, written as a TOML array or (in an environment variable) separated by
/// commas.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NameList {
    List(Vec<String>),
    Text(String),
}

impl NameList {
    fn names(self) -> Vec<String> {
        match self {
            NameList::List(names) => names,
            NameList::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRuns {
    retention_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDemo {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: Option<String>,
    dir: Option<PathBuf>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Database.
    pub database: DatabaseSettings,
    /// Redis URL; `None` = in-process memory locks (single node).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// Admin HTTP server address; `None` = no server.
    pub http_bind: Option<SocketAddr>,
    /// Tokens of the operations API.
    pub api_tokens: Vec<scheduler_actors::api::ApiToken>,
    /// Whether `/metrics` needs no token.
    pub metrics_public: bool,
    /// This node's id; `None` = host name and pid.
    pub node_id: Option<String>,
    /// How long running tasks may finish after SIGINT/SIGTERM.
    pub shutdown_grace: Duration,
    /// How often the node writes its heartbeat.
    pub heartbeat_interval: Duration,
    /// A node whose heartbeat is older than this is dead.
    pub node_timeout: Duration,
    /// Whether the built-in `shell` handler may run.
    pub shell_enabled: bool,
    /// The node's own `CRONMESH__*` variables `shell` tasks still see.
    pub shell_pass_env: Vec<String>,
    /// Run records older than this are pruned.
    pub run_retention: Duration,
    /// Whether the `demo.heartbeat` task is registered.
    pub demo_enabled: bool,
    /// Every task on this node in shadow mode (`run --shadow`; not a config key).
    pub shadow: bool,
    /// Alert routes and how they are sent.
    pub alerts: scheduler_actors::alerts::AlertConfig,
    /// Log line format.
    pub log_format: LogFormat,
    /// Directory for a daily-rolling log file, in addition to stderr.
    pub log_dir: Option<PathBuf>,
}

/// Where run state is stored.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://file.db` or `postgres://user@host/db`.
    pub url: String,
}

impl DatabaseSettings {
    /// The URL without its password, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The file of a SQLite URL (`None` for other databases and in-memory SQLite).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        store::sqlite_path(&self.url)
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable (the default on a terminal).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is not text or json")),
        }
    }
}

impl Settings {
    /// What a node started with these settings is given.
    pub fn node_config(&self) -> scheduler_actors::NodeConfig {
        scheduler_actors::NodeConfig {
            database_url: self.database.url.clone(),
            node_id: self.node_id.clone(),
            redis_url: self.redis_url.clone(),
            lock_prefix: self.redis_prefix.clone(),
            node_timeout: self.node_timeout,
            http_bind: self.http_bind,
            api_tokens: self.api_tokens.clone(),
            metrics_public: self.metrics_public,
            shutdown_grace: self.shutdown_grace,
            heartbeat_interval: self.heartbeat_interval,
            shell_enabled: self.shell_enabled,
            shell_pass_env: self.shell_pass_env.clone(),
            run_retention: self.run_retention,
            demo_enabled: self.demo_enabled,
            shadow: self.shadow,
            alerts: self.alerts.clone(),
            ..scheduler_actors::NodeConfig::default()
        }
    }

    /// Loads defaults < `file` (or `./cronmesh.toml` if it exists) < environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!(InvalidInput(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                builder = builder.add_source(config::File::from(path).required(true));
            }
            None => {
                builder = builder
                    .add_source(config::File::with_name(DEFAULT_CONFIG_FILE).required(false));
            }
        }
        for name in near_miss_env_vars(std::env::vars_os().map(|(k, _)| k)) {
            eprintln!(
                "warning: environment variable {name} is not read: settings are CRONMESH__SECTION__KEY, with two underscores after CRONMESH and between the parts (e.g. CRONMESH__DATABASE__URL)"
            );
        }
        Settings::from_config(builder.add_source(environment()))
    }

    /// Reads and validates what `builder`'s sources say.
    fn from_config(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> anyhow::Result<Settings> {
        let raw: RawSettings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| {
                InvalidInput(format!(
                    "configuration: {}",
                    clip_long_values(&store::redact_urls_in(&e.to_string()))
                ))
            })
            .context("loading settings")?;
        Settings::try_from(raw).map_err(|e| anyhow::Error::new(e).context("loading settings"))
    }
}

/// The config crate's message with every quoted value longer than a line clipped (it quotes
/// a value of the wrong type whole).
fn clip_long_values(text: &str) -> String {
    const KEEP: usize = 60;
    let mut out = String::with_capacity(text.len().min(1_000));
    for (i, part) in text.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        // Odd parts are inside quotes.
        if i % 2 == 1 && part.chars().count() > KEEP {
            out.extend(part.chars().take(KEEP));
            out.push_str(&format!("... ({} characters)", part.chars().count()));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A URL for a message: password redacted, and clipped when long.
fn shown_url(url: &str) -> String {
    scheduler_core::quoted(&redact_url(url))
}

/// The environment as a settings source: `CRONMESH__SECTION__KEY`.
fn environment() -> config::Environment {
    config::Environment::with_prefix("CRONMESH")
        .prefix_separator("__")
        .separator("__")
}

/// Names of environment variables that look like cronmesh settings but are not read: they
/// start with `CRONMESH` without the `CRONMESH__` of a setting (a single underscore, a missing
/// one). `CRONMESH_TEST_*` belongs to the test suite. Only names: a value may be a secret.
fn near_miss_env_vars(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    let mut found: Vec<String> = names
        .filter_map(|name| name.into_string().ok())
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with("CRONMESH")
                && !upper.starts_with("CRONMESH__")
                && !upper.starts_with("CRONMESH_TEST_")
        })
        .map(|name| name.chars().take(100).collect())
        .collect();
    found.sort();
    found
}

impl TryFrom<RawSettings> for Settings {
    type Error = InvalidInput;

    fn try_from(raw: RawSettings) -> Result<Self, InvalidInput> {
        // A value is quoted in the message; whatever it is, a URL's password is not.
        let bad = |key: &str, problem: String| {
            InvalidInput(format!(
                "config key `{key}`: {}",
                clip_long_values(&store::redact_urls_in(&problem))
            ))
        };

        let url = raw
            .database
            .url
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(bad(
                "database.url",
                format!("{} is not a sqlite:// or postgres:// URL", shown_url(&url)),
            ));
        }
        if let Err(why) = store::check_database_url(&url) {
            return Err(bad("database.url", format!("{} {why}", shown_url(&url))));
        }
        let redis_url = raw.redis.url.filter(|u| !u.is_empty());
        if let Some(u) = &redis_url
            && let Err(why) = scheduler_actors::RedisLockBackend::check_url(u)
        {
            return Err(bad("redis.url", format!("{} {why}", shown_url(u))));
        }
        let http_bind = match (raw.http.enabled.unwrap_or(true), raw.http.bind) {
            (false, _) => None,
            (true, None) => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            (true, Some(b)) => Some(b.parse().map_err(|_| {
                bad(
                    "http.bind",
                    format!(
                        "{} is not an address with a port, such as 127.0.0.1:8080",
                        scheduler_core::quoted(&b)
                    ),
                )
            })?),
        };
        let mut api_tokens = Vec::new();
        for (i, t) in raw.http.tokens.unwrap_or_default().into_iter().enumerate() {
            let key = format!("http.tokens[{i}]");
            let role = t.role.parse().map_err(|e| bad(&key, e))?;
            let token = scheduler_actors::api::ApiToken::new(&t.name, role, &t.token_sha256)
                .map_err(|e| bad(&key, e))?;
            if api_tokens
                .iter()
                .any(|k: &scheduler_actors::api::ApiToken| k.name == token.name)
            {
                return Err(bad(&key, format!("a second token named {:?}", token.name)));
            }
            api_tokens.push(token);
        }
        if let Some(addr) = http_bind
            && !addr.ip().is_loopback()
            && api_tokens.is_empty()
        {
            return Err(bad(
                "http.bind",
                format!(
                    "{addr} is not a loopback address and no [[http.tokens]] is configured: the operations API would be open to the network; add a token (`cronmesh token create`) or bind to 127.0.0.1"
                ),
            ));
        }
        let node_id = raw.node.id.filter(|s| !s.trim().is_empty());
        if let Some(id) = &node_id
            && (id.len() > 128 || id.chars().any(|c| c.is_whitespace() || c == ':'))
        {
            return Err(bad(
                "node.id",
                format!(
                    "{} must be at most 128 characters without spaces or ':'",
                    scheduler_core::quoted(id)
                ),
            ));
        }
        let secs = |key: &str, v: Option<u64>, default: u64, min: u64| {
            const MAX: u64 = 86_400;
            let v = v.unwrap_or(default);
            if v < min {
                Err(bad(key, format!("{v} is below the minimum of {min}")))
            } else if v > MAX {
                Err(bad(key, format!("{v} is more than a day ({MAX} s)")))
            } else {
                Ok(Duration::from_secs(v))
            }
        };
        let heartbeat_interval = secs("node.heartbeat_secs", raw.node.heartbeat_secs, 2, 1)?;
        let node_timeout = secs("node.timeout_secs", raw.node.timeout_secs, 10, 1)?;
        if node_timeout < heartbeat_interval * 2 {
            return Err(bad(
                "node.timeout_secs",
                format!(
                    "{} s must be at least twice node.heartbeat_secs ({} s), or live nodes would be declared dead",
                    node_timeout.as_secs(),
                    heartbeat_interval.as_secs()
                ),
            ));
        }
        let retention_days = raw.runs.retention_days.unwrap_or(30);
        if retention_days > 36_500 {
            return Err(bad(
                "runs.retention_days",
                format!("{retention_days} is more than a hundred years"),
            ));
        }
        let log_format = match raw.log.format.as_deref() {
            None => LogFormat::Text,
            Some(f) => f.parse().map_err(|e| bad("log.format", e))?,
        };
        let shell_pass_env = raw
            .handlers
            .shell_pass_env
            .map(NameList::names)
            .unwrap_or_default();
        if let Some(name) = shell_pass_env.iter().find(|n| !n.starts_with("CRONMESH__")) {
            return Err(bad(
                "handlers.shell_pass_env",
                format!(
                    "{} is not one of the node's CRONMESH__ settings; tasks see every other variable anyway",
                    scheduler_core::quoted(name)
                ),
            ));
        }
        let alerts = alerts::alert_config(raw.alerts).map_err(|e| {
            InvalidInput(format!(
                "config key {}",
                clip_long_values(&store::redact_urls_in(&e))
            ))
        })?;
        let redis_prefix = raw.redis.prefix.unwrap_or_else(|| "cronmesh".to_owned());
        if redis_prefix.is_empty() || redis_prefix.contains(char::is_whitespace) {
            return Err(bad(
                "redis.prefix",
                format!(
                    "{} must be non-empty without spaces",
                    scheduler_core::quoted(&redis_prefix)
                ),
            ));
        }
        Ok(Settings {
            database: DatabaseSettings { url },
            redis_url,
            redis_prefix,
            http_bind,
            api_tokens,
            metrics_public: raw.http.metrics_public.unwrap_or(true),
            node_id,
            shutdown_grace: secs(
                "node.shutdown_grace_secs",
                raw.node.shutdown_grace_secs,
                30,
                0,
            )?,
            heartbeat_interval,
            node_timeout,
            shell_enabled: raw.handlers.shell_enabled.unwrap_or(true),
            shell_pass_env,
            run_retention: Duration::from_secs(retention_days * 86_400),
            demo_enabled: raw.demo.enabled.unwrap_or(false),
            shadow: false,
            alerts,
            log_format,
            log_dir: raw.log.dir,
        })
    }
}

#[cfg(test)]
mod tests;
