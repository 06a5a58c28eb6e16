//! `cronmesh bench` through the real binary: its report must agree with what really ran.

use crate::support::postgres::TempDatabase;
use crate::support::redis::RedisServer;
use crate::support::{cronmesh, stderr, stdout};

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| {
        panic!("bench printed no JSON object ({e}): {}", stdout(out));
    })
}

#[test]
fn bench_on_the_embedded_default_reports_every_fire_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(
        dir.path(),
        &["bench", "--tasks", "50", "--duration", "2", "--json"],
        &[],
    );
    let r = report(&out);
    assert_eq!(r["fires_expected"], 100, "{r}");
    assert_eq!(r["missing"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["runs_recorded"], 100, "{r}");
    assert_eq!(r["nodes"], 1, "{r}");
    let p50 = r["lateness_ms"]["p50"].as_f64().unwrap();
    let max = r["lateness_ms"]["max"].as_f64().unwrap();
    assert!(p50 >= 0.0 && p50 <= max, "{r}");
    assert!(r["peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
    assert!(r["startup_ms"].as_f64().unwrap() > 0.0, "{r}");
    for key in ["fires_per_s", "rss_per_task_bytes", "cpu_s_per_1k_fires"] {
        assert!(r[key].is_number(), "{key} missing: {r}");
    }
    // Every run settled after the stop; one p99 per 10-second slice (a 2 s window is one).
    assert_eq!(r["runs_still_running_after_stop"], 0, "{r}");
    assert_eq!(r["writes_dropped"], 0, "{r}");
    let slices = r["p99_ms_per_10s"].as_array().unwrap();
    assert_eq!(slices.len(), 1, "{r}");
    assert!(slices[0].as_f64().unwrap() <= max, "{r}");
}

#[tokio::test]
async fn bench_with_two_node_processes_runs_each_fire_on_one_node() {
    let redis = RedisServer::start();
    let db = TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let redis_url = redis.url();
    let out = cronmesh(
        dir.path(),
        &[
            "bench",
            "--tasks",
            "40",
            "--duration",
            "2",
            "--nodes",
            "2",
            "--lock",
            "redis",
            "--redis-url",
            &redis_url,
            "--db",
            db.url(),
            "--json",
        ],
        &[],
    );
    let r = report(&out);
    assert_eq!(r["nodes"], 2, "{r}");
    assert_eq!(r["fires_expected"], 80, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["missing"], 0, "{r}");
    assert_eq!(r["runs_recorded"], 80, "{r}");
    assert_eq!(r["fires_without_a_row"], 0, "{r}");
    // The cluster's work per fire: the lock keeps most fires to one claim (claims are sent
    // ahead of the fire, so the window's edges move the ratio a little), and each fire costs
    // Redis at least its lock.
    let claims = r["claim_attempts_per_fire"].as_f64().unwrap();
    assert!((0.8..=2.2).contains(&claims), "{r}");
    let redis = r["redis_commands_per_fire"].as_f64().unwrap();
    assert!(redis >= 1.0, "{r}");
}

#[test]
fn bench_refuses_several_nodes_without_a_shared_lock_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(dir.path(), &["bench", "--nodes", "2"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--nodes 2 needs --lock redis"),
        "{}",
        stderr(&out)
    );
    let out = cronmesh(dir.path(), &["bench", "--handler", "spin"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("\"spin\""), "{}", stderr(&out));
}
