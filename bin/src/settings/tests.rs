//! Settings: defaults, bad values by key, redaction, and any value of any key.

use super::*;

fn from_toml(text: &str) -> Result<Settings, String> {
    from_source(config::File::from_str(text, config::FileFormat::Toml))
}

fn from_source(source: impl config::Source + Send + Sync + 'static) -> Result<Settings, String> {
    Settings::from_config(config::Config::builder().add_source(source))
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn defaults_are_the_embedded_node() {
    let s = from_toml("").expect("defaults");
    assert_eq!(s.database.url, DEFAULT_DATABASE_URL);
    assert_eq!(s.redis_url, None);
    assert_eq!(s.http_bind, Some("127.0.0.1:8080".parse().expect("addr")));
    assert!(!s.demo_enabled && s.shell_enabled);
    assert_eq!(s.run_retention, Duration::from_secs(30 * 86_400));
    // One default set: the binary's defaults are the library's.
    assert_eq!(s.node_config(), scheduler_actors::NodeConfig::default());
}

#[test]
fn bad_values_name_the_key() {
    let cases = [
        ("[http]\nbind = \"nowhere\"", "`http.bind`"),
        ("[database]\nurl = \"mysql://x\"", "`database.url`"),
        ("[redis]\nurl = \"http://x\"", "`redis.url`"),
        ("[node]\ntimeout_secs = 1", "`node.timeout_secs`"),
        ("[log]\nformat = \"xml\"", "`log.format`"),
        ("[runs]\nretention_days = 36501", "`runs.retention_days`"),
        ("[node]\nheartbeat_secs = 99999999", "`node.heartbeat_secs`"),
        ("[http]\nbnd = \"x\"", "unknown field `bnd`"),
        (
            "[handlers]\nshell_pass_env = [\"PATH\"]",
            "`handlers.shell_pass_env`",
        ),
        ("[nodes]\nid = \"x\"", "unknown field `nodes`"),
        (
            "[node]\nshutdown_grace_secs = \"soon\"",
            "shutdown_grace_secs",
        ),
    ];
    for (toml, expected) in cases {
        let err = from_toml(toml).expect_err(toml);
        assert!(err.contains(expected), "{toml}: {err}");
    }
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://app:s3cret@db:5432/cron"),
        "postgres://app:***@db:5432/cron"
    );
    assert_eq!(redact_url("sqlite://cronmesh.db"), "sqlite://cronmesh.db");
}

/// Every setting, as `section.key`.
const KEYS: [&str; 18] = [
    "database.url",
    "redis.url",
    "redis.prefix",
    "http.bind",
    "http.enabled",
    "http.metrics_public",
    "node.id",
    "node.shutdown_grace_secs",
    "node.heartbeat_secs",
    "node.timeout_secs",
    "handlers.shell_enabled",
    "handlers.shell_pass_env",
    "runs.retention_days",
    "demo.enabled",
    "log.format",
    "log.dir",
    "database.nope",
    "nope.url",
];

/// A password planted in URL values; no message may hold it.
const SECRET: &str = "pa55-w0rd-9";

fn text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        3 => prop::sample::select(vec![
            format!("postgres://app:{SECRET}@127.0.0.1:5432/cron"),
            format!("postgres://app:{SECRET}@127.0.0.1:notaport/cron"),
            format!("postgres://127.0.0.1/cron?password={SECRET}&x=1"),
            format!("redis://:{SECRET}@127.0.0.1:99999/0"),
            format!("rediss://u:{SECRET}@127.0.0.1:6380"),
            format!("mysql://u:{SECRET}@127.0.0.1/"),
            "sqlite://x.db".to_owned(),
            "sqlite:".to_owned(),
            "127.0.0.1:0".to_owned(),
            "[::1]:8080".to_owned(),
            "json".to_owned(),
            "text".to_owned(),
            "true".to_owned(),
            "-1".to_owned(),
            "18446744073709551616".to_owned(),
            String::new(),
            "é://x".to_owned(),
            format!("ü://u:{SECRET}@h"),
            "x".repeat(5000),
        ]),
        2 => ".{0,20}",
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]

    /// Any value for any key, from a file (as a string, a number, a boolean) or from
    /// the environment (always text): settings, or an error naming the key that never
    /// repeats a password.
    #[test]
    fn any_value_of_any_setting_is_taken_or_refused_by_name(
        key in proptest::sample::select(KEYS.to_vec()),
        text in text(),
        number in proptest::prelude::any::<i64>(),
        kind in 0..3u8,
    ) {
        use proptest::prelude::*;
        let (section, name) = key.split_once('.').unwrap_or((key, ""));
        let value = match kind {
            0 => toml::Value::String(text.clone()),
            1 => toml::Value::Integer(number),
            _ => toml::Value::Boolean(number % 2 == 0),
        };
        let from_file = || {
            let mut table = toml::Table::new();
            let mut inner = toml::Table::new();
            inner.insert(name.to_owned(), value.clone());
            table.insert(section.to_owned(), toml::Value::Table(inner));
            from_toml(&table.to_string())
        };
        let from_env = || {
            let env = std::collections::HashMap::from([(
                format!("CRONMESH__{}__{}", section.to_uppercase(), name.to_uppercase()),
                text.clone(),
            )]);
            from_source(environment().source(Some(env)))
        };
        for result in [from_file(), from_env()] {
            match result {
                Ok(settings) => {
                    prop_assert!(KEYS[..16].contains(&key), "{} was taken", key);
                    if let Some(addr) = settings.http_bind {
                        prop_assert_eq!(addr.to_string().parse().ok(), Some(addr));
                    }
                }
                Err(e) => {
                    prop_assert!(e.contains(name) || e.contains(section), "{}: {}", key, e);
                    prop_assert!(!e.contains(SECRET), "{}", e);
                    prop_assert!(e.len() < 1_000, "{} bytes: {}", e.len(), key);
                }
            }
        }
    }
}

#[test]
fn near_misses_of_setting_names_are_found() {
    let names = [
        "CRONMESH_DATABASE__URL",
        "CRONMESHDATABASE__URL",
        "cronmesh_redis_url",
        "CRONMESH__DATABASE__URL",
        "CRONMESH_TEST_DATABASE_URL",
        "PATH",
    ]
    .map(std::ffi::OsString::from);
    assert_eq!(
        near_miss_env_vars(names.into_iter()),
        [
            "CRONMESHDATABASE__URL",
            "CRONMESH_DATABASE__URL",
            "cronmesh_redis_url"
        ]
    );
}

#[test]
fn sqlite_path() {
    let db = |url: &str| {
        DatabaseSettings {
            url: url.to_owned(),
        }
        .sqlite_path()
    };
    assert_eq!(
        db("sqlite://cronmesh.db?mode=rwc"),
        Some(PathBuf::from("cronmesh.db"))
    );
    assert_eq!(
        db("sqlite:///var/lib/c.db"),
        Some(PathBuf::from("/var/lib/c.db"))
    );
    assert_eq!(db("sqlite::memory:"), None);
    assert_eq!(db("postgres://x/y"), None);
}
