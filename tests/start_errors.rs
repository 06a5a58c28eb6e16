//! A node that cannot start says why, with the setting's name, and exits 1 or 2, never with a
//! panic; nothing is left claiming to run.

use std::net::TcpListener;

use crate::support::{cronmesh, stderr, stdout};

/// Runs `cronmesh run` with `env` and returns its exit code and stderr.
fn run_fails(dir: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = cronmesh(dir, &["run"], env);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code(), err)
}

#[test]
fn an_admin_port_in_use_is_named_and_leaves_no_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run_fails(dir.path(), &[("CRONMESH__HTTP__BIND", addr.as_str())]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`http.bind`"), "{err}");
    assert!(err.contains(&addr) && err.contains("in use"), "{err}");
    let nodes = cronmesh(dir.path(), &["nodes", "--json"], &[]);
    assert!(nodes.status.success(), "{}", stderr(&nodes));
    assert_eq!(stdout(&nodes).trim(), "[]", "no node row claims to run");
}

#[test]
fn a_redis_url_that_does_not_parse_is_bad_input_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "redis://127.0.0.1:99999",
        "redis://:hunter2@127.0.0.1:notaport",
        "redis+cluster://:hunter2@127.0.0.1:7001,127.0.0.1:notaport",
        "redis+sentinel://:hunter2@127.0.0.1:26379",
        "rediz://:hunter2@127.0.0.1:6379",
    ] {
        let (code, err) = run_fails(dir.path(), &[("CRONMESH__REDIS__URL", url)]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains("`redis.url`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    assert!(
        !dir.path().join("cronmesh.db").exists(),
        "refused before anything was opened"
    );
}

#[test]
fn a_log_dir_that_cannot_hold_logs_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for log_dir in [file.to_str().unwrap(), "/proc/nope"] {
        let (code, err) = run_fails(dir.path(), &[("CRONMESH__LOG__DIR", log_dir)]);
        assert_eq!(code, Some(2), "{log_dir}: {err}");
        assert!(err.contains("`log.dir`") && err.contains(log_dir), "{err}");
    }
}

#[test]
fn an_admin_address_this_host_does_not_have_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    // 192.0.2.1 is reserved for documentation (RFC 5737) and on no host: binding to it fails
    // at once, and nothing is ever sent to it. (A token, or the settings refuse a
    // non-loopback address before any bind.)
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        format!(
            "[[http.tokens]]\nname = \"t\"\nrole = \"viewer\"\ntoken_sha256 = \"{}\"\n",
            scheduler_actors::api::token_sha256("cm_t")
        ),
    )
    .unwrap();
    let (code, err) = run_fails(dir.path(), &[("CRONMESH__HTTP__BIND", "192.0.2.1:8080")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`http.bind`") && err.contains("not an address of this host"),
        "{err}"
    );
    let nodes = cronmesh(dir.path(), &["nodes", "--json"], &[]);
    assert!(nodes.status.success(), "{}", stderr(&nodes));
    assert_eq!(stdout(&nodes).trim(), "[]", "no node row claims to run");
}

#[test]
fn an_api_open_beyond_loopback_without_tokens_is_refused_and_text_logs_have_no_colours() {
    use crate::support::node::{NodeProcess, free_port};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let (code, err) = run_fails(dir.path(), &[("CRONMESH__HTTP__BIND", bind.as_str())]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`http.bind`") && err.contains("no [[http.tokens]]"),
        "{err}"
    );
    // With a token it starts (listening on every interface; the test talks over loopback).
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        format!(
            "[[http.tokens]]\nname = \"t\"\nrole = \"viewer\"\ntoken_sha256 = \"{}\"\n",
            scheduler_actors::api::token_sha256("cm_t")
        ),
    )
    .unwrap();
    let node = NodeProcess::start_at(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &[("CRONMESH__HTTP__BIND", &bind)],
    );
    assert!(node.stop().success());
    std::fs::remove_file(dir.path().join("cronmesh.toml")).unwrap();
    let quiet = NodeProcess::start(dir.path(), &[]);
    let log = quiet.log();
    assert!(quiet.stop().success());
    assert!(
        log.contains("has no tokens"),
        "loopback without tokens is said once: {log}"
    );
    // Text logs into a file (not a terminal) carry no colour codes.
    assert!(log.contains(" INFO "), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
