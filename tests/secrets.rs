//! Secrets stay secret: a node whose database and Redis URLs hold passwords (in the URL's
//! user info and as a query parameter) runs a task that prints its environment and a failing
//! `http` task whose URL and header hold credentials, loses Redis for a while, and is asked
//! everything over HTTP; no log line, run record, HTTP response or command output holds any
//! of the secrets.

use std::path::Path;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

use crate::support::node::{NodeProcess, free_port, wait_for};
use crate::support::postgres::TempDatabase;
use crate::support::redis::RedisServer;
use crate::support::{cronmesh, stderr, stdout};

/// The database password: `/`, `@` and `:` must be percent-encoded in the URL.
const DB_PASSWORD: &str = "db/p@ss:W0rd-7141";
const DB_PASSWORD_ENCODED: &str = "db%2Fp%40ss%3AW0rd-7141";
const DB_QUERY_PASSWORD: &str = "dbQueryPw-5523";
const REDIS_PASSWORD: &str = "redisPw-8830";
const HOOK_PASSWORD: &str = "hookPw-2291";
const HOOK_TOKEN: &str = "hookToken-6617";
const HEADER_TOKEN: &str = "bearerTok-4402";

const SECRETS: [&str; 7] = [
    DB_PASSWORD,
    DB_PASSWORD_ENCODED,
    DB_QUERY_PASSWORD,
    REDIS_PASSWORD,
    HOOK_PASSWORD,
    HOOK_TOKEN,
    HEADER_TOKEN,
];

/// `url` with `password` as the password of its user (the test server trusts loopback, so
/// any password is accepted, and the node has to carry it all the same).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest
        .rsplit_once('@')
        .expect("a user in the test database URL");
    let user = userinfo.split(':').next().unwrap_or(userinfo);
    format!("{scheme}://{user}:{password}@{host}")
}

/// Fails naming the secret and where it was found.
fn assert_no_secret(place: &str, text: &str) {
    for secret in SECRETS {
        if let Some(at) = text.find(secret) {
            let start = at.saturating_sub(200);
            let end = (at + secret.len() + 200).min(text.len());
            let context = text.get(start..end).unwrap_or(text);
            panic!("{secret:?} found in {place}: ...{context}...");
        }
    }
}

/// Every file under `dir` (logs, the rolling JSON log), as text.
fn all_files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            found.push((
                entry.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Everything the database holds about runs and nodes, as text.
async fn database_dump(url: &str) -> String {
    let db = Database::connect(url).await.expect("test database");
    let mut text = String::new();
    for table in ["task_run", "scheduler_node"] {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT row_to_json(t)::text AS row FROM {table} t"),
            ))
            .await
            .expect("dump");
        for row in rows {
            text.push_str(&row.try_get::<String>("", "row").unwrap_or_default());
            text.push('\n');
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_and_tokens_never_reach_logs_run_records_or_responses() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TempDatabase::create().await;
    let db_url = with_password(pg.url(), DB_PASSWORD_ENCODED);
    let db_query_url = format!("{}?password={DB_QUERY_PASSWORD}", pg.url());
    let mut redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let logs = dir.path().join("logs");
    let settings = [
        ("CRONMESH__DATABASE__URL", db_url.as_str()),
        ("CRONMESH__REDIS__URL", &redis.url()),
        ("CRONMESH__LOG__FORMAT", "json"),
        ("CRONMESH__LOG__DIR", logs.to_str().unwrap()),
        ("RUST_LOG", "debug"),
    ];
    let outputs = std::cell::RefCell::new(Vec::<(String, String)>::new());
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = cronmesh(dir.path(), args, env);
        outputs
            .borrow_mut()
            .push((format!("cronmesh {args:?}"), stdout(&out) + &stderr(&out)));
        out
    };

    // A node's settings in the environment of the CLI that adds the tasks, too.
    let out = run(&["migrate"], &settings);
    assert!(out.status.success(), "{}", stderr(&out));
    let closed = free_port();
    let hook =
        format!("http://hook:{HOOK_PASSWORD}@127.0.0.1:{closed}/hook?token={HOOK_TOKEN}&x=1");
    let http_args = serde_json::json!({
        "url": hook,
        "method": "POST",
        "headers": {"Authorization": format!("Bearer {HEADER_TOKEN}")},
        "timeout_secs": 2,
    })
    .to_string();
    for (name, handler, args) in [
        ("leak.env", "shell", r#"{"program":"env"}"#.to_owned()),
        ("leak.http", "http", http_args),
    ] {
        let out = run(
            &[
                "tasks",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--handler",
                handler,
                "--args",
                &args,
            ],
            &settings,
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }

    let node = NodeProcess::start(dir.path(), &settings);
    let db = Database::connect(pg.url()).await.unwrap();
    wait_for("runs of both tasks", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(DISTINCT task_name) AS n FROM task_run WHERE finished_at IS NOT NULL",
                ))
                .await
                .ok()??;
            (row.try_get::<i64>("", "n").ok()? == 2).then_some(())
        }
    })
    .await;
    // Redis goes away and comes back: the lock actor's complaints must not quote its URL.
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/actors",
        "/api/tasks",
        "/nope",
        "/api/v1/tasks",
        "/api/v1/tasks/leak.http",
        "/api/v1/runs?task=leak.http",
        "/api/v1/runs?task=leak.env",
        "/api/v1/nodes",
        "/api/v1/actors",
        "/api/v1/audit",
    ] {
        let resp = client
            .get(format!("{}{path}", node.url))
            .send()
            .await
            .unwrap();
        let body = resp.text().await.unwrap();
        outputs.borrow_mut().push((format!("GET {path}"), body));
    }
    for args in [
        &["runs", "--json", "--limit", "1000"][..],
        &["runs", "--task", "leak.http"],
        &["nodes"],
        &["tasks", "list"],
        &["inspect", "--url", &node.url],
    ] {
        run(args, &settings);
    }
    let node_log = node.log();
    assert!(node.stop().success(), "{node_log}");

    // The same with the password as a query parameter, and a database that refuses.
    let query_settings = [
        ("CRONMESH__DATABASE__URL", db_query_url.as_str()),
        ("CRONMESH__LOG__FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ];
    let node = NodeProcess::start(dir.path(), &query_settings);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let query_node_log = node.log();
    assert!(node.stop().success(), "{query_node_log}");
    let refused = format!("postgres://app:{DB_PASSWORD_ENCODED}@127.0.0.1:{closed}/cron");
    let out = run(&["run"], &[("CRONMESH__DATABASE__URL", &refused)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(
        &["runs"],
        &[(
            "CRONMESH__DATABASE__URL",
            &format!("postgres://127.0.0.1:{closed}/cron?password={DB_QUERY_PASSWORD}"),
        )],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // The test can see a leak: the env task printed an environment, the http task failed
    // naming its (redacted) URL, and the node did lose Redis.
    let dump = database_dump(pg.url()).await;
    assert!(
        dump.contains("PATH="),
        "the env task's output is recorded:\n{dump}"
    );
    assert!(
        dump.contains("request to http://hook:***@127.0.0.1"),
        "the http task's error is recorded:\n{dump}"
    );
    assert!(
        node_log.contains("lock backend unreachable"),
        "the node lost Redis:\n{node_log}"
    );

    for (place, text) in outputs.borrow().iter() {
        assert_no_secret(place, text);
    }
    assert_no_secret("the node's log", &node_log);
    assert_no_secret("the second node's log", &query_node_log);
    assert_no_secret("the database's runs and nodes", &dump);
    let files = all_files(dir.path());
    assert!(
        files.iter().any(|(name, _)| name.contains("logs")),
        "log.dir holds a log file"
    );
    for (name, text) in &files {
        if !name.ends_with(".db") {
            assert_no_secret(name, text);
        }
    }
}
