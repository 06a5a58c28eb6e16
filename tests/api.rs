//! The operations API against a real node: who may do what (each role by each endpoint),
//! the error format, 413, 412 on a stale If-Match, the audit trail of API changes, and tokens
//! that never reach the log.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::support::node::NodeProcess;
use crate::support::{cronmesh, stderr, stdout};

pub(crate) const VIEWER: &str = "cm_viewer_token_for_tests_1111";
pub(crate) const OPERATOR: &str = "cm_operator_token_for_tests_2222";
pub(crate) const ADMIN: &str = "cm_admin_token_for_tests_3333";

/// A node with a viewer, an operator and an admin token, and one task `a.b`.
pub(crate) fn node_with_tokens(dir: &std::path::Path, env: &[(&str, &str)]) -> NodeProcess {
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

pub(crate) async fn call(
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
    // The admin server's own JSON routes need a token too once tokens are configured.
    for path in ["/api/tasks", "/api/actors"] {
        let open = call(&node, Method::GET, path, None, None).await.status();
        assert_eq!(open, StatusCode::UNAUTHORIZED, "{path}");
        let viewer = call(&node, Method::GET, path, Some(VIEWER), None)
            .await
            .status();
        assert_eq!(viewer, StatusCode::OK, "{path}");
    }
    let health = call(&node, Method::GET, "/healthz", None, None).await;
    let health = health.text().await.unwrap();
    assert!(
        !health.contains("token:"),
        "no token names for anyone: {health}"
    );
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
