//! The operations API end to end: tasks, trigger confs, runs, previews, nodes and actors
//! through a real node on SQLite and on Postgres with Redis, and schema fuzzing of a live node
//! against its OpenAPI document.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::api::{ADMIN, OPERATOR, VIEWER, call, node_with_tokens};

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

    // Every answer has exactly the keys its documented schema names.
    let doc: serde_json::Value = call(&node, Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let task: serde_json::Value = call(
        &node,
        Method::GET,
        "/api/v1/tasks/api.tick",
        Some(VIEWER),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_shape(&doc, "Task", &task);
    assert_shape(&doc, "Run", &one);
    assert_shape(&doc, "Conf", &conf);
    assert_shape(&doc, "Preview", &preview);
    let audit: serde_json::Value = call(
        &node,
        Method::GET,
        "/api/v1/audit?limit=1",
        Some(VIEWER),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_shape(&doc, "AuditPage", &audit);
    assert_shape(&doc, "AuditEvent", &audit["items"][0]);
    assert_shape(&doc, "Cluster", &audit["cluster"]);

    let nodes: serde_json::Value = call(&node, Method::GET, "/api/v1/nodes", Some(VIEWER), None)
        .await
        .json()
        .await
        .unwrap();
    assert_shape(&doc, "NodeList", &nodes);
    assert_shape(&doc, "Node", &nodes["items"][0]);
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
    let schemathesis = crate::support::venv_program("bin/schemathesis");
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

/// `value` has exactly the properties the document's schema `name` declares.
fn assert_shape(doc: &serde_json::Value, name: &str, value: &serde_json::Value) {
    let declared: std::collections::BTreeSet<&str> =
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name} in the document"))
            .keys()
            .map(String::as_str)
            .collect();
    let actual: std::collections::BTreeSet<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        actual, declared,
        "{name}: the answer's keys and the document's differ"
    );
}
