//! The web console in a real browser: `tests/console/console_test.py` drives Debian's
//! Chromium with Playwright for Python (from the venv `scripts/services.sh` makes) against a
//! real node, on SQLite and on Postgres with Redis. Screenshots of the main pages at 1280 px
//! and 390 px land in `test-artifacts/console/` at the top of the repository.
//!
//! Next to it, the console's rules checked over plain HTTP, where a browser would hide them:
//! no page without a session, no change without the session's CSRF token or from another
//! origin, and none at all beyond the session's role.

use std::path::{Path, PathBuf};

use crate::api::{ADMIN, OPERATOR, VIEWER, node_with_tokens};

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts/console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn browser_scenarios(label: &str, env: &[(&str, &str)]) {
    let python = crate::support::venv_program("bin/python");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: run scripts/services.sh (scripts/test.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_tokens(dir.path(), env);
    let conf = r#"{"type":"cron","expr":"15 1 * * *","timezone":"Europe/Berlin"}"#;
    let out = crate::support::cronmesh(dir.path(), &["triggers", "add", "nightly", conf], env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/console/console_test.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args(["--url", &node.url])
        .args(["--admin", ADMIN, "--operator", OPERATOR, "--viewer", VIEWER])
        .arg("--shots")
        .arg(artifacts())
        .args(["--label", label])
        .current_dir(dir.path())
        .output()
        .expect("python runs");
    let log = node.log();
    assert!(node.stop().success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n--- node log ---\n{log}"
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    assert!(!log.contains("panicked"), "{log}");
    // No token, and no session cookie, reaches the node's log.
    for secret in [ADMIN, OPERATOR, VIEWER] {
        assert!(!log.contains(secret), "a token reached the log");
    }
}

#[test]
fn the_console_in_chromium_on_sqlite() {
    browser_scenarios("sqlite", &[]);
}

#[test]
fn the_console_in_chromium_on_postgres_and_redis() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = rt.block_on(crate::support::postgres::TempDatabase::create());
    let redis = crate::support::redis::RedisServer::start();
    let redis_url = redis.url();
    browser_scenarios(
        "postgres",
        &[
            ("CRONMESH__DATABASE__URL", pg.url()),
            ("CRONMESH__REDIS__URL", &redis_url),
        ],
    );
    drop(pg);
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Signs in with `token`; the session cookie (`name=value`) and the whole Set-Cookie line.
async fn sign_in(url: &str, token: &str, proto: Option<&str>) -> (String, String) {
    let mut req = client()
        .post(format!("{url}/login"))
        .form(&[("token", token), ("next", "/")]);
    if let Some(proto) = proto {
        req = req.header("X-Forwarded-Proto", proto);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let line = resp
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    (line.split(';').next().unwrap().to_owned(), line)
}

/// A page's CSRF token (every signed-in page has the sign-out form).
async fn csrf_of(url: &str, cookie: &str) -> String {
    let page = client()
        .get(format!("{url}/runs"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&page)
}

/// The CSRF token a page's forms carry.
fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..start + 64].to_owned()
}

async fn post(url: &str, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{url}{path}"))
        .header("Cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_csrf_and_roles_hold_without_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_tokens(dir.path(), &[]);
    let url = node.url.clone();
    // No session: every page sends the browser to sign in, and back afterwards.
    for path in ["/", "/tasks/a.b", "/runs", "/audit", "/tasks/new"] {
        let resp = client().get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        let to = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("/login?next=/"), "{path}: {to}");
    }
    // A changing request without a session is not let through either.
    let resp = post(&url, "/tasks/a.b/run", "", &[("csrf", "x")]).await;
    assert_eq!(resp.status(), 303);
    // After signing in, only a path on this server is followed.
    for next in [
        "//evil.invalid/",
        "/\t/evil.invalid",
        "/\\evil.invalid",
        "https://evil.invalid/",
    ] {
        let resp = client()
            .post(format!("{url}/login"))
            .form(&[("token", VIEWER), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(resp.headers()["location"], "/", "{next}");
    }
    // A wrong token: 401 and the form again.
    let resp = client()
        .post(format!("{url}/login"))
        .form(&[("token", "cm_not_a_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("name=\"token\""));

    // The cookie: HttpOnly, SameSite=Strict, expiring, Secure only over TLS.
    let (viewer, line) = sign_in(&url, VIEWER, None).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "{line}");
    let (_, tls) = sign_in(&url, VIEWER, Some("https")).await;
    assert!(tls.contains("Secure"), "{tls}");

    // A viewer sees no controls and may change nothing, even with its own CSRF token.
    let page = client()
        .get(format!("{url}/tasks/a.b"))
        .header("Cookie", &viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for control in ["run-now", "/edit", "/delete", "/enabled"] {
        assert!(!page.contains(control), "a viewer is shown {control}");
    }
    let csrf = csrf_of(&url, &viewer).await;
    for (path, extra) in [
        ("/tasks/a.b/run", vec![]),
        ("/tasks/a.b/enabled", vec![("enabled", "false")]),
        ("/tasks/x.del/delete", vec![]),
        (
            "/tasks/a.b/edit",
            vec![("mode", "cron"), ("expr", "* * * * *"), ("handler", "noop")],
        ),
        ("/cluster", vec![("paused", "true"), ("reason", "no")]),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(extra);
        let resp = post(&url, path, &viewer, &form).await;
        assert_eq!(resp.status(), 403, "viewer POST {path}");
    }

    // An operator may run and toggle, but only with the session's token, from this origin.
    let (ops, _) = sign_in(&url, OPERATOR, None).await;
    let ops_csrf = csrf_of(&url, &ops).await;
    assert_ne!(ops_csrf, csrf, "each session has its own CSRF token");
    let resp = post(&url, "/tasks/a.b/run", &ops, &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 403, "another session's CSRF token");
    let resp = post(&url, "/tasks/a.b/run", &ops, &[]).await;
    assert_eq!(resp.status(), 403, "no CSRF token");
    let resp = client()
        .post(format!("{url}/tasks/a.b/run"))
        .header("Cookie", &ops)
        .header("Origin", "http://attacker.invalid")
        .form(&[("csrf", ops_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "a form from another site");
    let resp = post(&url, "/tasks/a.b/run", &ops, &[("csrf", &ops_csrf)]).await;
    assert_eq!(resp.status(), 303);
    let resp = post(&url, "/tasks/x.del/delete", &ops, &[("csrf", &ops_csrf)]).await;
    assert_eq!(resp.status(), 403, "deleting needs admin");

    // An admin's edit against a version that moved on: 412, the form kept, nothing written.
    let (root, _) = sign_in(&url, ADMIN, None).await;
    let root_csrf = csrf_of(&url, &root).await;
    let form = [
        ("csrf", root_csrf.as_str()),
        ("version", "1"),
        ("mode", "cron"),
        ("expr", "15 4 * * *"),
        ("timezone", "Europe/Berlin"),
        ("handler", "noop"),
        ("misfire", "skip"),
        ("overlap", "allow"),
        ("action", "save"),
    ];
    let resp = post(&url, "/tasks/a.b/edit", &root, &form).await;
    assert_eq!(resp.status(), 412);
    assert!(resp.text().await.unwrap().contains("15 4 * * *"));
    let task: serde_json::Value = client()
        .get(format!("{url}/api/v1/tasks/a.b"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(task["trigger"]["expr"], "@daily", "{task}");
    // With the current version it is written, and audited under the token's name.
    let version = task["version"].to_string();
    let mut form = form.to_vec();
    form[1] = ("version", &version);
    let resp = post(&url, "/tasks/a.b/edit", &root, &form).await;
    assert_eq!(resp.status(), 303);
    let audit = client()
        .get(format!("{url}/api/v1/audit?target=task:a.b"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("token:root") && audit.contains("15 4 * * *"),
        "{audit}"
    );

    // Signing out ends the session on the server.
    let resp = post(&url, "/logout", &root, &[("csrf", &root_csrf)]).await;
    assert_eq!(resp.status(), 303);
    let resp = client()
        .get(format!("{url}/"))
        .header("Cookie", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "a signed-out cookie still works");
    let log = node.log();
    assert!(node.stop().success(), "{log}");
    assert!(!log.contains(ADMIN) && !log.contains(&root_csrf));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_tokens_on_loopback_there_is_no_sign_in_but_forms_still_need_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::cronmesh(dir.path(), &["migrate"], &[]);
    assert!(out.status.success());
    let out = crate::support::cronmesh(
        dir.path(),
        &[
            "tasks",
            "add",
            "a.b",
            "--cron",
            "@daily",
            "--handler",
            "noop",
        ],
        &[],
    );
    assert!(out.status.success());
    let node = crate::support::node::NodeProcess::start(dir.path(), &[]);
    let url = node.url.clone();
    let resp = client().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // No other site may frame it, and it loads nothing from elsewhere.
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("New task") && page.contains("local · admin"));
    assert!(!page.contains("Sign out"), "nothing to sign out of");
    // A page of another name pointed at this address (DNS rebinding) is turned away.
    let resp = client()
        .get(format!("{url}/"))
        .header("Host", "rebound.example.invalid")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The API too, and a forwarding header naming loopback does not make it one.
    for (path, forwarded) in [("/api/v1/tasks", None), ("/", Some("localhost"))] {
        let mut req = client()
            .get(format!("{url}{path}"))
            .header("Host", "rebound.example.invalid");
        if let Some(f) = forwarded {
            req = req.header("X-Forwarded-Host", f);
        }
        assert_eq!(req.send().await.unwrap().status(), 403, "{path}");
    }
    let resp = client()
        .get(format!("{url}/"))
        .header("Host", "localhost:1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Another site's form gets no further than the CSRF check.
    let resp = post(&url, "/tasks/a.b/run", "", &[("csrf", "guess")]).await;
    assert_eq!(resp.status(), 403);
    let csrf = csrf_in(&page);
    let resp = post(&url, "/tasks/a.b/run", "", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 303);
    assert!(node.stop().success());
}

/// Walks every page of the tasks table in one order; the names in the order met.
async fn walk(
    db: &sea_orm::DatabaseConnection,
    sort: store::TaskSort,
    descending: bool,
    text: Option<&str>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let (mut after, mut after_key) = (None, None);
    loop {
        let page = store::query_tasks(
            db,
            &store::TaskQuery {
                text: text.map(str::to_owned),
                after: after.clone(),
                after_key: after_key.clone(),
                sort,
                descending,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.row.name.clone());
        after_key = sort.key_of(&last.row).map(str::to_owned);
        let full = page.len() == 10;
        seen.extend(page.into_iter().map(|t| t.row.name));
        if !full {
            break;
        }
    }
    seen
}

async fn pages_visit_every_task_once(url: &str) {
    let db = store::connect(url).await.unwrap();
    store::migrate(&db).await.unwrap();
    let decls: Vec<scheduler_core::TaskDecl> = (0..137)
        .map(|i| {
            let daily = scheduler_core::Trigger::cron("@daily", "UTC")
                .unwrap()
                .to_json();
            scheduler_core::TaskDecl::trigger_json(&format!("m{}.t{i:03}", i % 7), &daily)
                .handler("noop")
                .owner(["", "ops", "web", "ops", "data"][i % 5])
                .description(if i % 3 == 0 {
                    "nightly export"
                } else {
                    "other"
                })
        })
        .collect();
    store::insert_runtime_tasks(&db, &decls).await.unwrap();
    let rows: Vec<(String, String, String, String)> = decls
        .iter()
        .map(|d| {
            let module = d.name.split('.').next().unwrap().to_owned();
            (
                d.name.clone(),
                module,
                d.owner.clone(),
                d.description.clone(),
            )
        })
        .collect();
    for sort in [
        store::TaskSort::Name,
        store::TaskSort::Module,
        store::TaskSort::Owner,
    ] {
        for descending in [false, true] {
            for text in [None, Some("export")] {
                let mut expected: Vec<&(String, String, String, String)> = rows
                    .iter()
                    .filter(|r| text.is_none_or(|t| r.3.contains(t)))
                    .collect();
                expected.sort_by(|a, b| {
                    let key = |r: &(String, String, String, String)| match sort {
                        store::TaskSort::Name => (String::new(), r.0.clone()),
                        store::TaskSort::Module => (r.1.clone(), r.0.clone()),
                        store::TaskSort::Owner => (r.2.clone(), r.0.clone()),
                    };
                    key(a).cmp(&key(b))
                });
                if descending {
                    expected.reverse();
                }
                let expected: Vec<String> = expected.into_iter().map(|r| r.0.clone()).collect();
                let seen = walk(&db, sort, descending, text).await;
                assert_eq!(
                    seen, expected,
                    "{sort:?} descending={descending} text={text:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn task_pages_in_any_order_visit_every_task_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    pages_visit_every_task_once(&format!("sqlite://{}/t.db", dir.path().display())).await;
}

#[tokio::test]
async fn task_pages_in_any_order_visit_every_task_once_on_postgres() {
    let pg = crate::support::postgres::TempDatabase::create().await;
    pages_visit_every_task_once(pg.url()).await;
}
