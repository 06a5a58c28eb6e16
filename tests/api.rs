//! The operations API against a real node: who may do what (each role by each endpoint),
//! the error format, 413, 412 on a stale If-Match, the audit trail of API changes, and tokens
//! that never reach the log.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::support::node::NodeProcess;
use crate::support::{cronmesh, stderr, stdout};

const VIEWER: &str = "cm_viewer_token_for_tests_1111";
const OPERATOR: &str = "cm_operator_token_for_tests_2222";
const ADMIN: &str = "cm_admin_token_for_tests_3333";

/// A node with a viewer, an operator and an admin token, and one task `a.b`.
fn node_with_tokens(dir: &std::path::Path, env: &[(&str, &str)]) -> NodeProcess {
    let mut config = String::new();
    for (name, role, token) in [
        ("view", "viewer", VIEWER),
        ("ops", "operator", OPERATOR),
        ("root", "admin", ADMIN),
    ] {
        config.push_str(&format!(
            "[[http.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n\n",
            scheduler_actors::api::token_sha256(token)
        ));
    }
    std::fs::write(dir.join("cronmesh.toml"), config).unwrap();
    let out = cronmesh(dir, &["migrate"], env);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["a.b", "x.del"] {
        let add = [
            "tasks",
            "add",
            name,
            "--cron",
            "@daily",
            "--handler",
            "noop",
        ];
        let out = cronmesh(dir, &add, env);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut env = env.to_vec();
    env.push(("CRONMESH__HANDLERS__SHELL_ENABLED", "false"));
    NodeProcess::start(dir, &env)
}

async fn call(
    node: &NodeProcess,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", node.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.timeout(Duration::from_secs(10)).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_may_do_what_it_may_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_tokens(dir.path(), &[]);
    let reason = || Some(serde_json::json!({"reason": "matrix"}));
    use serde_json::json;
    // (method, path, body, least role: 0 viewer, 1 operator, 2 admin)
    let endpoints: Vec<(Method, &str, Option<serde_json::Value>, usize)> = vec![
        (Method::GET, "/api/v1/tasks", None, 0),
        (Method::GET, "/api/v1/tasks/a.b", None, 0),
        (Method::GET, "/api/v1/audit", None, 0),
        (Method::GET, "/api/v1/trigger-confs", None, 0),
        (Method::GET, "/api/v1/runs", None, 0),
        (Method::GET, "/api/v1/nodes", None, 0),
        (Method::GET, "/api/v1/actors", None, 0),
        (
            Method::POST,
            "/api/v1/preview",
            Some(json!({"expr": "@daily"})),
            0,
        ),
        (
            Method::POST,
            "/api/v1/trigger-confs",
            Some(json!({"name": "nightly", "trigger": {"type": "cron", "expr": "0 2 * * *"}})),
            2,
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            Some(
                json!({"name": "api.made", "handler": "noop", "trigger": {"type": "cron", "expr": "@hourly"}}),
            ),
            2,
        ),
        (Method::DELETE, "/api/v1/tasks/x.del", None, 2),
        (Method::GET, "/api/v1/trigger-confs/nightly", None, 0),
        (
            Method::PUT,
            "/api/v1/trigger-confs/nightly",
            Some(json!({"trigger": {"type": "cron", "expr": "0 3 * * *"}})),
            2,
        ),
        (Method::DELETE, "/api/v1/trigger-confs/nightly", None, 2),
        (Method::GET, "/api/v1/runs/no-such-run", None, 0),
        (
            Method::PATCH,
            "/api/v1/tasks/a.b",
            Some(serde_json::json!({"enabled": true})),
            1,
        ),
        (Method::POST, "/api/v1/tasks/a.b/run", None, 1),
        (Method::POST, "/api/v1/pause", reason(), 1),
        (Method::POST, "/api/v1/resume", reason(), 1),
    ];
    let callers = [
        (None, None),
        (Some("cm_not_a_token"), None),
        (Some(VIEWER), Some(0)),
        (Some(OPERATOR), Some(1)),
        (Some(ADMIN), Some(2)),
    ];
    for (method, path, body, least) in &endpoints {
        for (token, rank) in callers {
            let resp = call(&node, method.clone(), path, token, body.clone()).await;
            let status = resp.status();
            let expected = match rank {
                None => StatusCode::UNAUTHORIZED,
                Some(r) if r < *least => StatusCode::FORBIDDEN,
                Some(_) if *path == "/api/v1/tasks/a.b/run" => StatusCode::ACCEPTED,
                // Allowed, and answered: there is no such run.
                Some(_) if path.ends_with("no-such-run") => StatusCode::NOT_FOUND,
                Some(_) if *method == Method::DELETE => StatusCode::NO_CONTENT,
                Some(_) if *method == Method::POST && path.ends_with('s') => StatusCode::CREATED,
                Some(_) => StatusCode::OK,
            };
            let text = resp.text().await.unwrap();
            assert_eq!(status, expected, "{method} {path} as {token:?}: {text}");
            if !status.is_success() {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(
                    v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                    "{text}"
                );
                assert!(
                    !text.contains("ops") || status != StatusCode::UNAUTHORIZED,
                    "no hint of tokens: {text}"
                );
            }
        }
    }
    let log = node.log();
    assert!(node.stop().success());
    for token in [VIEWER, OPERATOR, ADMIN] {
        assert!(!log.contains(token), "a token in the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_if_match_big_bodies_and_unknown_names_are_refused_and_changes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_tokens(dir.path(), &[]);
    // Liveness, readiness and metrics need no token by default.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        assert_eq!(
            call(&node, Method::GET, path, None, None).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let resp = call(&node, Method::GET, "/api/v1/tasks/a.b", Some(VIEWER), None).await;
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let task: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(etag, format!("\"{}\"", task["version"]));

    // A stale If-Match: 412, nothing written.
    let stale = reqwest::Client::new()
        .patch(format!("{}/api/v1/tasks/a.b", node.url))
        .bearer_auth(OPERATOR)
        .header("If-Match", "\"0\"")
        .json(&serde_json::json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let err: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(err["error"]["code"], "stale");
    let after = call(&node, Method::GET, "/api/v1/tasks/a.b", Some(VIEWER), None).await;
    assert_eq!(
        after.json::<serde_json::Value>().await.unwrap()["enabled"],
        true
    );

    // The current ETag: the change is made and audited as the token.
    let ok = reqwest::Client::new()
        .patch(format!("{}/api/v1/tasks/a.b", node.url))
        .bearer_auth(OPERATOR)
        .header("If-Match", &etag)
        .json(&serde_json::json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_ne!(
        ok.headers()["etag"].to_str().unwrap(),
        etag,
        "a new version"
    );
    assert_eq!(
        ok.json::<serde_json::Value>().await.unwrap()["enabled"],
        false
    );

    // Over 64 KiB: 413.
    let big = serde_json::json!({"reason": "x".repeat(70 * 1024)});
    let resp = call(&node, Method::POST, "/api/v1/pause", Some(ADMIN), Some(big)).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "too_large"
    );

    // A name that is not there, and a pause without a reason: the CLI's words.
    let resp = call(
        &node,
        Method::GET,
        "/api/v1/tasks/a.nope",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let text = resp.text().await.unwrap();
    assert!(text.contains("no task named \\\"a.nope\\\""), "{text}");
    let resp = call(
        &node,
        Method::POST,
        "/api/v1/pause",
        Some(ADMIN),
        Some(serde_json::json!({"reason": " "})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["field"],
        "reason"
    );

    // A method a route does not take: 405 naming those it does; an unknown route: 404.
    let resp = call(&node, Method::PUT, "/api/v1/tasks", Some(VIEWER), None).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let resp = call(
        &node,
        Method::GET,
        "/api/v1/nothing/here",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = call(
        &node,
        Method::GET,
        "/api/v1/tasks?limit=lots",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "invalid"
    );

    // A filtered, paged list.
    let resp = call(
        &node,
        Method::GET,
        "/api/v1/tasks?module=a&enabled=false&limit=1",
        Some(VIEWER),
        None,
    )
    .await;
    let page: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(page["items"][0]["name"], "a.b", "{page}");
    assert_eq!(page["cluster"]["paused"], false);
    for list in [
        "/api/v1/runs",
        "/api/v1/audit",
        "/api/v1/trigger-confs",
        "/api/v1/nodes",
    ] {
        let page: serde_json::Value = call(&node, Method::GET, list, Some(VIEWER), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["cluster"]["paused"], false, "{list}: {page}");
    }
    assert!(node.stop().success());

    // The API's change is in the audit trail beside the CLI's.
    let audit = cronmesh(dir.path(), &["audit", "--json"], &[]);
    let events: Vec<serde_json::Value> = serde_json::from_str(&stdout(&audit)).unwrap();
    assert_eq!(events[0]["action"], "task.disable", "{events:#?}");
    assert_eq!(events[0]["actor"], "token:ops");
    assert_eq!(events[0]["before"]["enabled"], true);
    assert_eq!(events[0]["after"]["enabled"], false);
    assert_eq!(events.last().unwrap()["action"], "task.create");
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_confs_runs_and_previews_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    api_flow(dir.path(), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_works_the_same_on_postgres_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::support::postgres::TempDatabase::create().await;
    let redis = crate::support::redis::RedisServer::start();
    let redis_url = redis.url();
    api_flow(
        dir.path(),
        &[
            ("CRONMESH__DATABASE__URL", pg.url()),
            ("CRONMESH__REDIS__URL", &redis_url),
        ],
    )
    .await;
}

/// Tasks, confs, runs, previews, nodes and actors through the API of a node on `env`.
async fn api_flow(dir: &std::path::Path, env: &[(&str, &str)]) {
    use serde_json::json;
    let mut env = env.to_vec();
    env.push(("CRONMESH__HTTP__METRICS_PUBLIC", "false"));
    let node = node_with_tokens(dir, &env);
    // /metrics behind a token when asked to be.
    let resp = call(&node, Method::GET, "/metrics", None, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = call(&node, Method::GET, "/metrics", Some(VIEWER), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let admin = |method: Method, path: &'static str, body: serde_json::Value| {
        call(&node, method, path, Some(ADMIN), Some(body))
    };
    // A bad expression: the CLI's words, 400, nothing written.
    let resp = admin(
        Method::POST,
        "/api/v1/tasks",
        json!({"name": "api.bad", "handler": "noop", "trigger": {"type": "cron", "expr": "0 0 32 * *"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("day-of-month 32"));
    // shell is off on this node: 403 with the reason.
    let resp = admin(
        Method::POST,
        "/api/v1/tasks",
        json!({"name": "api.sh", "handler": "shell", "handler_args": {"program": "env"},
               "trigger": {"type": "cron", "expr": "@daily"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("handlers.shell_enabled")
    );

    // A conf, a task on it, and the conf cannot go while used.
    let resp = admin(
        Method::POST,
        "/api/v1/trigger-confs",
        json!({"name": "every-sec", "trigger": {"type": "cron", "expr": "* * * * * *"}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = admin(
        Method::POST,
        "/api/v1/tasks",
        json!({"name": "api.tick", "handler": "noop", "trigger_conf": "every-sec"}),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        resp.text().await.unwrap()
    );
    let conf: serde_json::Value = call(
        &node,
        Method::GET,
        "/api/v1/trigger-confs/every-sec",
        Some(VIEWER),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(conf["used_by"], json!(["api.tick"]));
    let resp = call(
        &node,
        Method::DELETE,
        "/api/v1/trigger-confs/every-sec",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("api.tick"));

    // Its runs, by the API, and one by id.
    let mut runs = serde_json::Value::Null;
    for _ in 0..100 {
        runs = call(
            &node,
            Method::GET,
            "/api/v1/runs?task=api.tick&status=succeeded&limit=1",
            Some(VIEWER),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        if runs["items"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run_id = runs["items"][0]["run_id"].as_str().unwrap().to_owned();
    assert!(runs["next_cursor"].is_string(), "{runs}");
    let one: serde_json::Value = call(
        &node,
        Method::GET,
        &format!("/api/v1/runs/{run_id}"),
        Some(VIEWER),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["task"], "api.tick");
    let resp = call(
        &node,
        Method::GET,
        "/api/v1/runs?status=nope",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // A stale If-Match on delete: 412 and the task stays.
    let resp = reqwest::Client::new()
        .delete(format!("{}/api/v1/tasks/api.tick", node.url))
        .bearer_auth(ADMIN)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        call(
            &node,
            Method::GET,
            "/api/v1/tasks/api.tick",
            Some(VIEWER),
            None
        )
        .await
        .status(),
        StatusCode::OK
    );

    // A preview across a DST change says so.
    let preview: serde_json::Value = call(
        &node,
        Method::POST,
        "/api/v1/preview",
        Some(VIEWER),
        Some(json!({
            "trigger": {"type": "cron", "expr": "30 2 * * *", "timezone": "America/New_York",
                        "start_at": "2030-03-09T12:00:00Z"},
            "count": 2
        })),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        preview["fires"][0]["utc"], "2030-03-10T07:00:00Z",
        "{preview}"
    );
    let note = preview["fires"][0]["note"].as_str().unwrap_or("");
    assert!(note.contains("does not exist"), "{preview}");
    let resp = call(
        &node,
        Method::POST,
        "/api/v1/preview",
        Some(VIEWER),
        Some(json!({"expr": "@daily", "timezone": "Mars/Base"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("Mars/Base"));

    // Any writable field, by an admin; an operator only flips `enabled`.
    let patch = json!({"owner": "ops-team", "trigger": {"type": "cron", "expr": "@hourly"}, "timeout_ms": 5000});
    let resp = call(
        &node,
        Method::PATCH,
        "/api/v1/tasks/api.tick",
        Some(OPERATOR),
        Some(patch.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = call(
        &node,
        Method::PATCH,
        "/api/v1/tasks/api.tick",
        Some(ADMIN),
        Some(patch),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let task: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(task["owner"], "ops-team");
    assert_eq!(task["trigger_conf"], serde_json::Value::Null);
    assert_eq!(task["trigger"]["expr"], "@hourly");
    assert_eq!(task["timeout_ms"], 5000);
    let resp = call(
        &node,
        Method::PATCH,
        "/api/v1/tasks/api.tick",
        Some(ADMIN),
        Some(json!({"misfire": "sometimes"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"]["field"],
        "misfire"
    );
    let resp = call(
        &node,
        Method::PATCH,
        "/api/v1/tasks/api.tick",
        Some(ADMIN),
        Some(json!({"handler": "nope"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = call(
        &node,
        Method::PATCH,
        "/api/v1/tasks/api.tick",
        Some(ADMIN),
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );

    let nodes: serde_json::Value = call(&node, Method::GET, "/api/v1/nodes", Some(VIEWER), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nodes["items"][0]["state"], "running");
    let actors: serde_json::Value = call(&node, Method::GET, "/api/v1/actors", Some(VIEWER), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(actors.to_string().contains("SchedulerActor"));
    assert!(node.stop().success());
}

#[test]
fn schema_fuzzing_finds_no_server_error_and_every_answer_matches_the_document() {
    let venv = std::env::var("CRONMESH_VENV").unwrap_or_else(|_| "/var/tmp/cronmesh-venv".into());
    let schemathesis = std::path::Path::new(&venv).join("bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/services.sh (scripts/test.sh does)",
        schemathesis.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_tokens(dir.path(), &[]);
    let out = std::process::Command::new(&schemathesis)
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", node.url),
            "--header",
            &format!("Authorization: Bearer {ADMIN}"),
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method",
        ])
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = node.log();
    assert!(node.stop().success(), "{log}");
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // How many requests it made, for the record.
    let generated = report
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or("")
        .trim()
        .to_owned();
    eprintln!("schemathesis: {generated}");
    assert!(generated.contains("passed"), "{report}");
    assert!(!log.contains("panicked"), "{log}");
}
