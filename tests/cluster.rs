//! Cluster behaviour and faults: real Postgres (a database per test), a private Redis per
//! test, nodes as separate processes of the real binary. Each test checks the history: what
//! executed (an execution log every run appends to) against the `task_run` rows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::task_run::{self, RunStatus};
use nix::sys::signal::Signal;
use sea_orm::DatabaseConnection;
use store::RunFilter;

use crate::support::history::{assert_exactly_once, executions, logging_shell_args};
use crate::support::node::{NodeProcess, wait_for};
use crate::support::postgres::TempDatabase;
use crate::support::redis::{RedisCluster, RedisServer, SentinelSet};
use crate::support::{cronmesh, fire_events, stderr};

/// One Postgres database and one Redis for the nodes of a test.
struct Cluster {
    dir: tempfile::TempDir,
    pg: TempDatabase,
    redis: RedisServer,
    /// The URL nodes and commands get: the private Redis's unless a test set another shape.
    redis_url: String,
    db: DatabaseConnection,
}

impl Cluster {
    async fn new() -> Cluster {
        let pg = TempDatabase::create().await;
        let db = store::connect(pg.url()).await.unwrap();
        store::migrate(&db).await.unwrap();
        let redis = RedisServer::start();
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            redis_url: redis.url(),
            redis,
            db,
            pg,
        }
    }

    /// The same, with nodes and commands on the Redis at `url` (a cluster, sentinels).
    async fn with_redis_url(url: String) -> Cluster {
        Cluster {
            redis_url: url,
            ..Cluster::new().await
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn exec_log(&self) -> PathBuf {
        self.dir().join("executions.log")
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CRONMESH__DATABASE__URL", self.pg.url().to_owned()),
            ("CRONMESH__REDIS__URL", self.redis_url.clone()),
        ]
    }

    fn cli(&self, args: &[&str]) {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = cronmesh(self.dir(), args, &env);
        assert!(out.status.success(), "cronmesh {args:?}: {}", stderr(&out));
    }

    /// Gives every node and command of the cluster one `json` alert route, `ops`, to
    /// `receiver` for the events `on` (no throttle).
    fn alert_route(&self, receiver: &crate::support::receiver::Receiver, on: &[&str]) {
        let on: Vec<String> = on.iter().map(|e| format!("{e:?}")).collect();
        std::fs::write(
            self.dir().join("cronmesh.toml"),
            format!(
                "[[alerts.routes]]\nname = \"ops\"\nurl = \"{}/ops\"\nformat = \"json\"\n\
                 secret = \"0123456789abcdef0\"\non = [{}]\nmin_interval_secs = 0\n",
                receiver.url,
                on.join(", ")
            ),
        )
        .unwrap();
    }

    fn node(&self, id: &str, extra: &[(&str, &str)]) -> NodeProcess {
        let mut env: Vec<(&str, String)> = self.env();
        env.push(("CRONMESH__NODE__ID", id.to_owned()));
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        NodeProcess::start(self.dir(), &env)
    }

    /// Adds `n` tasks named `<prefix><i>` firing every second, each appending to the
    /// execution log.
    fn add_every_second_tasks(&self, prefix: &str, n: usize) -> Vec<String> {
        let args = logging_shell_args(&self.exec_log(), 0);
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
        for name in &names {
            self.cli(&[
                "tasks",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--handler",
                "shell",
                "--args",
                &args,
            ]);
        }
        names
    }

    async fn runs(&self) -> Vec<task_run::Model> {
        store::list_runs(
            &self.db,
            &RunFilter {
                task: None,
                status: None,
                limit: 1_000_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    async fn runs_of(&self, task: &str) -> Vec<task_run::Model> {
        crate::support::node::runs_of(&self.db, task).await
    }
}

fn rfc(t: DateTime<Utc>) -> String {
    scheduler_core::rfc3339(t)
}

/// A whole second at least `secs` from now.
fn second_from_now(secs: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(secs);
    DateTime::from_timestamp(t.timestamp() + 1, 0).unwrap()
}

/// Every (task, fire) an every-second task owes in `[from, until]`.
fn every_second_fires(
    names: &[String],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(String, String)> {
    let every_second = scheduler_core::Trigger::cron("* * * * * *", "UTC").unwrap();
    names
        .iter()
        .flat_map(|n| {
            every_second
                .fires_between(from, until)
                .map(move |t| (n.clone(), rfc(t)))
        })
        .collect()
}

fn date_trigger(at: DateTime<Utc>) -> String {
    format!(r#"{{"type":"date","run_at":"{}"}}"#, rfc(at))
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_run_every_fire_exactly_once() {
    let c = Cluster::new().await;
    let names = c.add_every_second_tasks("load.t", 20);
    let args = logging_shell_args(&c.exec_log(), 0);
    let burst_at = second_from_now(12);
    let once: Vec<String> = (0..30).map(|i| format!("burst.d{i:02}")).collect();
    // One write for all thirty (thirty CLI processes on a loaded machine could take until
    // the burst, and a date task added after its instant is owed nothing).
    let handler_args: serde_json::Value = serde_json::from_str(&args).unwrap();
    let burst: Vec<scheduler_core::TaskDecl> = once
        .iter()
        .map(|name| {
            let mut decl = scheduler_core::TaskDecl::trigger_json(name, &date_trigger(burst_at))
                .handler("shell");
            decl.handler_args = Some(handler_args.clone());
            decl
        })
        .collect();
    store::insert_runtime_tasks(&c.db, &burst).await.unwrap();
    let nodes: Vec<NodeProcess> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| c.node(id, &[]))
        .collect();
    let from = Utc::now() + chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let until = Utc::now() - chrono::Duration::seconds(2);
    for n in nodes {
        assert!(n.stop().success());
    }

    let mut expected = every_second_fires(&names, from, until);
    for name in &once {
        expected.push((name.clone(), rfc(burst_at)));
    }
    assert!(expected.len() > 20 * 20);
    assert_exactly_once(&c.exec_log(), &c.runs().await, &expected);
    let nodes_used: std::collections::BTreeSet<String> = executions(&c.exec_log())
        .into_iter()
        .map(|e| e.node)
        .collect();
    assert!(
        nodes_used.len() >= 2,
        "work spread over the cluster: {nodes_used:?}"
    );
}

/// Starts two nodes and a 5 s run due in about 3 s with a fire lock of `lock_ttl` seconds;
/// returns the nodes and the index of the one running it.
async fn two_nodes_and_a_long_run(
    c: &Cluster,
    task: &str,
    recover: bool,
    lock_ttl: &str,
    extra: &[(&str, &str)],
) -> (Vec<NodeProcess>, usize) {
    let args = logging_shell_args(&c.exec_log(), 5);
    let nodes = vec![c.node("n1", extra), c.node("n2", extra)];
    let mut add = vec![
        "tasks",
        "add",
        task,
        "--handler",
        "shell",
        "--args",
        &args,
        "--lock-ttl",
        lock_ttl,
    ];
    let trigger = date_trigger(second_from_now(4));
    add.extend(["--trigger-json", &trigger]);
    if recover {
        add.push("--recover");
    }
    c.cli(&add);
    let run = wait_for("the run to start", Duration::from_secs(15), || async {
        c.runs_of(task)
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Running)
    })
    .await;
    // Claimed is not yet started: wait for the process to be running, so a test that stops or
    // kills the node stops it mid-run (on a loaded machine the gap between them was enough for
    // a SIGSTOP to land before the handler started, and nothing ran).
    wait_for("the handler to start", Duration::from_secs(15), || async {
        executions(&c.exec_log())
            .iter()
            .any(|e| e.task == task)
            .then_some(())
    })
    .await;
    let holder = if run.node_id == "n1" { 0 } else { 1 };
    (nodes, holder)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_node_without_recover_leaves_an_abandoned_run() {
    let c = Cluster::new().await;
    // The survivor, which settles the run, is the one that alerts.
    let hooks = crate::support::receiver::Receiver::start();
    c.alert_route(&hooks, &["abandoned"]);
    let json = [("CRONMESH__LOG__FORMAT", "json")];
    let (mut nodes, holder) =
        two_nodes_and_a_long_run(&c, "kill.norecover", false, "2", &json).await;
    nodes[holder].signal(Signal::SIGKILL);
    let _ = nodes[holder].wait_exit(Duration::from_secs(5));
    let killed_at = std::time::Instant::now();
    let run = wait_for(
        "the run to be abandoned",
        Duration::from_secs(15),
        || async {
            c.runs_of("kill.norecover")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Abandoned)
        },
    )
    .await;
    // node timeout 3 s + one reaper round.
    assert!(
        killed_at.elapsed() < Duration::from_secs(8),
        "abandoned after {:?}",
        killed_at.elapsed()
    );
    assert_eq!(run.attempt, 1);
    assert!(run.error.clone().unwrap_or_default().contains("died"));
    assert_eq!(executions(&c.exec_log()).len(), 1, "nobody ran it again");
    // The survivor's log says so with every field of a fire event.
    let log = nodes[1 - holder].log();
    let event = fire_events(&log)
        .into_iter()
        .find(|v| v["fields"]["status"] == "abandoned")
        .unwrap_or_else(|| panic!("no abandoned event in\n{log}"));
    assert_eq!(event["fields"]["run_id"], run.run_id.as_str());
    let survivor = if holder == 0 { "n2" } else { "n1" };
    let alert = wait_for("the abandoned alert", Duration::from_secs(10), || async {
        hooks.at("/ops").first().map(|r| r.json())
    })
    .await;
    assert_eq!(alert["event"], "abandoned");
    assert_eq!(alert["run_id"], run.run_id.as_str());
    assert_eq!(alert["node"], survivor);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hooks.at("/ops").len(), 1, "one alert for one abandoned run");
    for n in nodes {
        drop(n);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_node_with_recover_is_rerun_once_elsewhere() {
    let c = Cluster::new().await;
    let json = [("CRONMESH__LOG__FORMAT", "json")];
    let (mut nodes, holder) = two_nodes_and_a_long_run(&c, "kill.recover", true, "2", &json).await;
    nodes[holder].signal(Signal::SIGKILL);
    let _ = nodes[holder].wait_exit(Duration::from_secs(5));
    let run = wait_for("the re-run to succeed", Duration::from_secs(30), || async {
        c.runs_of("kill.recover")
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    let survivor = if holder == 0 { "n2" } else { "n1" };
    assert_eq!(run.attempt, 2);
    assert_eq!(run.node_id, survivor);
    let execs = executions(&c.exec_log());
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert_eq!((execs[1].attempt, execs[1].node.as_str()), (2, survivor));
    assert_eq!(c.runs_of("kill.recover").await.len(), 1, "one row per fire");
    let log = nodes[1 - holder].log();
    let event = fire_events(&log)
        .into_iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("re-running")
        })
        .unwrap_or_else(|| panic!("no re-run event in\n{log}"));
    assert_eq!(event["fields"]["run_id"], run.run_id.as_str());
    assert_eq!(event["fields"]["attempt"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_recover_hands_the_fire_to_a_peer_at_once() {
    let c = Cluster::new().await;
    let grace = [("CRONMESH__NODE__SHUTDOWN_GRACE_SECS", "1")];
    let (mut nodes, holder) =
        two_nodes_and_a_long_run(&c, "drain.recover", true, "30", &grace).await;
    nodes[holder].signal(Signal::SIGTERM);
    assert_eq!(
        nodes[holder].wait_exit(Duration::from_secs(15)).code(),
        Some(0)
    );
    let stopped = Utc::now();
    let survivor = if holder == 0 { "n2" } else { "n1" };
    let run = wait_for("the peer's attempt 2", Duration::from_secs(15), || async {
        c.runs_of("drain.recover")
            .await
            .into_iter()
            .find(|r| r.attempt == 2)
    })
    .await;
    assert_eq!(run.node_id, survivor);
    // Promptly: well within the 30 s lock ttl (the drained node freed the lock).
    let waited = run.started_at - stopped;
    assert!(
        waited < chrono::Duration::seconds(5),
        "peer started after {waited}"
    );
    wait_for("the re-run to succeed", Duration::from_secs(15), || async {
        c.runs_of("drain.recover")
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Succeeded)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_keeps_a_short_lock_alive() {
    let c = Cluster::new().await;
    let args = logging_shell_args(&c.exec_log(), 10);
    let nodes = [c.node("n1", &[]), c.node("n2", &[])];
    let at = second_from_now(4);
    c.cli(&[
        "tasks",
        "add",
        "long.ttl1",
        "--trigger-json",
        &date_trigger(at),
        "--handler",
        "shell",
        "--args",
        &args,
        "--lock-ttl",
        "1",
    ]);
    wait_for("the run to start", Duration::from_secs(10), || async {
        c.runs_of("long.ttl1")
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Running)
    })
    .await;
    let key = format!("cronmesh:{{long.ttl1}}:fire:{}", at.timestamp_millis());
    for _ in 0..8 {
        let ttl = c.redis.pttl(&key);
        assert!(
            ttl > 0 && ttl <= 1000,
            "lock must stay alive through renewals, pttl = {ttl}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let run = wait_for("the run to finish", Duration::from_secs(10), || async {
        c.runs_of("long.ttl1")
            .await
            .into_iter()
            .find(|r| r.status != RunStatus::Running)
    })
    .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert!(run.duration_ms.unwrap_or(0) >= 10_000);
    assert_eq!(
        executions(&c.exec_log()).len(),
        1,
        "no other node started it"
    );
    for n in nodes {
        assert!(n.stop().success());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_empty_mid_schedule() {
    let mut c = Cluster::new().await;
    let names = c.add_every_second_tasks("steady.t", 5);
    let nodes = [c.node("n1", &[]), c.node("n2", &[]), c.node("n3", &[])];
    let from = Utc::now() + chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    c.redis.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.redis.restart();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let until = Utc::now() - chrono::Duration::seconds(2);
    // Reconnected on their own: no node reports degraded any more.
    for n in &nodes {
        let metrics = reqwest::get(format!("{}/metrics", n.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("cronmesh_degraded 0"), "{metrics}");
    }
    let logs: String = nodes.iter().map(NodeProcess::log).collect();
    assert!(
        logs.contains("running degraded"),
        "nodes noticed the outage"
    );
    for n in nodes {
        assert!(n.stop().success());
    }
    let expected = every_second_fires(&names, from, until);
    assert_exactly_once(&c.exec_log(), &c.runs().await, &expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_node_loses_its_lock_and_its_late_writes_change_nothing() {
    let c = Cluster::new().await;
    // Alerts follow the record: the peer's `abandoned`, not the refused `lock_lost`.
    let hooks = crate::support::receiver::Receiver::start();
    c.alert_route(&hooks, &["abandoned", "lock_lost"]);
    let (mut nodes, holder) = two_nodes_and_a_long_run(&c, "pause.me", false, "1", &[]).await;
    // Paused past the 1 s lock ttl and the 3 s node timeout: its peer settles the run.
    nodes[holder].signal(Signal::SIGSTOP);
    let abandoned = wait_for(
        "the peer to abandon the run",
        Duration::from_secs(15),
        || async {
            c.runs_of("pause.me")
                .await
                .into_iter()
                .find(|r| r.status == RunStatus::Abandoned)
        },
    )
    .await;
    nodes[holder].signal(Signal::SIGCONT);
    // The woken node notices the loss and tries to write its outcome; the fence refuses it.
    let woken = &nodes[holder];
    wait_for(
        "the woken node to see the loss",
        Duration::from_secs(15),
        || async {
            let log = woken.log();
            (log.contains("lock lost") || log.contains("lock deadline passed")).then_some(())
        },
    )
    .await;
    wait_for("its refused write", Duration::from_secs(10), || async {
        woken.log().contains("outcome not written").then_some(())
    })
    .await;
    let rows = c.runs_of("pause.me").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].status,
        RunStatus::Abandoned,
        "the late lock_lost write changed nothing: {:?}",
        rows[0]
    );
    assert_eq!(rows[0].finished_at, abandoned.finished_at);
    assert_eq!(executions(&c.exec_log()).len(), 1, "nobody ran it twice");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alerts: Vec<serde_json::Value> = hooks.at("/ops").iter().map(|r| r.json()).collect();
    assert_eq!(alerts.len(), 1, "one alert for one fire: {alerts:?}");
    assert_eq!(alerts[0]["event"], "abandoned");
    for n in nodes.drain(..) {
        drop(n);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_cut_for_ten_seconds_loses_nothing() {
    use crate::support::proxy::FaultProxy;
    let c = Cluster::new().await;
    let proxy = FaultProxy::start("127.0.0.1:5432");
    let via_proxy = c.pg.url().replacen("127.0.0.1:5432", &proxy.addr(), 1);
    assert_ne!(
        via_proxy,
        c.pg.url(),
        "the test database URL goes through 127.0.0.1:5432"
    );
    let args3 = logging_shell_args(&c.exec_log(), 3);
    let args0 = logging_shell_args(&c.exec_log(), 0);
    c.cli(&[
        "tasks",
        "add",
        "cut.tick",
        "--cron",
        "* * * * * *",
        "--handler",
        "shell",
        "--args",
        &args0,
    ]);
    let env = [("CRONMESH__DATABASE__URL", via_proxy.as_str())];
    let nodes = [c.node("n1", &env), c.node("n2", &env)];
    let at = second_from_now(4);
    c.cli(&[
        "tasks",
        "add",
        "cut.long",
        "--trigger-json",
        &date_trigger(at),
        "--handler",
        "shell",
        "--args",
        &args3,
    ]);
    wait_for("the long run to start", Duration::from_secs(10), || async {
        c.runs_of("cut.long")
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Running)
    })
    .await;
    proxy.cut();
    let cut_at = Utc::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    proxy.restore();
    let restored_at = Utc::now();
    // Nodes stayed up; the outcome finished during the cut is written after it.
    let long = wait_for("the buffered outcome", Duration::from_secs(20), || async {
        c.runs_of("cut.long")
            .await
            .into_iter()
            .find(|r| r.status == RunStatus::Succeeded)
    })
    .await;
    assert!(
        long.finished_at.unwrap() < restored_at,
        "finished during the cut, written after it"
    );
    wait_for("fires to run again", Duration::from_secs(15), || async {
        let after = restored_at.timestamp_millis() + 2000;
        c.runs_of("cut.tick")
            .await
            .into_iter()
            .find(|r| r.fire_ts_ms > after && r.status == RunStatus::Succeeded)
    })
    .await;
    for n in &nodes {
        let health = reqwest::get(format!("{}/healthz", n.url)).await.unwrap();
        assert!(health.status().is_success());
    }
    for n in nodes {
        assert!(n.stop().success());
    }
    // Nothing written twice, nothing that ran left unrecorded: every execution has exactly
    // one row, succeeded. Fires due while the database was cut could not be claimed and did
    // not run (documented); they leave no execution.
    let execs = crate::support::history::executions_per_fire(&c.exec_log());
    let runs = c.runs().await;
    for ((task, fire), e) in &execs {
        assert_eq!(e.len(), 1, "{task} {fire} executed {} times", e.len());
        let row = runs.iter().find(|r| {
            &r.task_name == task
                && &rfc(DateTime::from_timestamp_millis(r.fire_ts_ms).unwrap()) == fire
        });
        let row = row.unwrap_or_else(|| panic!("{task} {fire} ran but has no row"));
        assert_eq!(row.status, RunStatus::Succeeded, "{row:?}");
    }
    let during_cut = execs
        .keys()
        .filter(|(t, f)| {
            t == "cut.tick"
                && f.as_str() > rfc(cut_at + chrono::Duration::seconds(1)).as_str()
                && f.as_str() < rfc(restored_at - chrono::Duration::seconds(1)).as_str()
        })
        .count();
    assert_eq!(
        during_cut, 0,
        "fires during the cut cannot be claimed and do not run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_clock_is_two_seconds_behind_runs_no_fire_twice() {
    let c = Cluster::new().await;
    let names = c.add_every_second_tasks("skew.t", 5);
    let on_time = c.node("n-on-time", &[]);
    // libfaketime preloaded into the node itself (the `faketime` wrapper would fork, and
    // signals would not reach the node).
    let lib = faketime_library();
    let probe = cronmesh(
        c.dir(),
        &["next", "* * * * * *", "-n", "1", "--json"],
        &[("LD_PRELOAD", lib.as_str()), ("FAKETIME", "-2s")],
    );
    let next: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let next = DateTime::parse_from_rfc3339(next["fires"][0].as_str().unwrap()).unwrap();
    assert!(
        Utc::now() - next.with_timezone(&Utc) >= chrono::Duration::milliseconds(900),
        "the preloaded clock is behind"
    );
    let behind = c.node(
        "n-behind",
        &[("LD_PRELOAD", lib.as_str()), ("FAKETIME", "-2s")],
    );
    let from = Utc::now() + chrono::Duration::seconds(3);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let until = Utc::now() - chrono::Duration::seconds(3);
    let behind_log = behind.log();
    assert!(on_time.stop().success());
    assert!(behind.stop().success());
    assert!(behind_log.contains("node started"), "{behind_log}");
    let expected = every_second_fires(&names, from, until);
    assert_exactly_once(&c.exec_log(), &c.runs().await, &expected);
}

/// The libfaketime shared object (Debian's `faketime` package, installed by scripts/services.sh).
fn faketime_library() -> String {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned())
        .expect("libfaketime is installed (scripts/services.sh installs the faketime package)")
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_send_one_alert_per_failed_run() {
    let c = Cluster::new().await;
    let hooks = crate::support::receiver::Receiver::start();
    c.alert_route(&hooks, &["failed"]);
    for i in 0..3 {
        c.cli(&[
            "tasks",
            "add",
            &format!("fail.t{i}"),
            "--cron",
            "* * * * * *",
            "--handler",
            "shell",
            "--overlap",
            "allow",
            "--args",
            r#"{"program":"sh","args":["-c","exit 3"]}"#,
        ]);
    }
    let nodes: Vec<NodeProcess> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| c.node(id, &[]))
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Runs that ended well before the stop have had time to be alerted.
    let settled = Utc::now() - chrono::Duration::seconds(3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in nodes {
        assert!(n.stop().success());
    }

    let mut per_run: std::collections::BTreeMap<String, usize> = Default::default();
    let mut senders = std::collections::BTreeSet::new();
    for r in hooks.at("/ops") {
        let body = r.json();
        *per_run
            .entry(body["run_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
        senders.insert(body["node"].as_str().unwrap().to_owned());
    }
    assert!(
        per_run.values().all(|n| *n == 1),
        "an alert sent twice: {per_run:?}"
    );
    let failed: Vec<task_run::Model> = c
        .runs()
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Failed && r.finished_at.is_some_and(|f| f < settled))
        .collect();
    assert!(failed.len() >= 15, "{}", failed.len());
    for run in &failed {
        assert!(per_run.contains_key(&run.run_id), "no alert for {run:?}");
    }
    assert!(
        senders.len() >= 2,
        "alerts come from the node that ran the fire: {senders:?}"
    );
}

/// Scrapes a node's metrics until `cronmesh_degraded` is `degraded`, for up to `within`.
async fn wait_degraded(node: &NodeProcess, degraded: bool, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let line = format!("cronmesh_degraded {}", u8::from(degraded));
    while tokio::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{}/metrics", node.url)).await
            && r.text().await.is_ok_and(|m| m.contains(&line))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_on_a_redis_cluster_run_every_fire_exactly_once() {
    let redis = RedisCluster::start();
    let c = Cluster::with_redis_url(redis.url()).await;
    let names = c.add_every_second_tasks("spread.t", 12);
    let nodes: Vec<NodeProcess> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| c.node(id, &[]))
        .collect();
    let from = Utc::now() + chrono::Duration::seconds(2);
    // A task added while they run: the command publishes the change through the cluster
    // (it says so when it could not notify the nodes), and every master passes it on to
    // its subscribers, whichever master the command sent it to.
    let (ready, subscribed) = std::sync::mpsc::channel();
    let listeners: Vec<std::thread::JoinHandle<redis::RedisResult<redis::Msg>>> = redis
        .masters
        .iter()
        .map(|m| {
            let (url, ready) = (m.url(), ready.clone());
            std::thread::spawn(move || {
                let mut conn = redis::Client::open(url)?.get_connection()?;
                conn.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut pubsub = conn.as_pubsub();
                pubsub.subscribe("cronmesh:changes")?;
                let _ = ready.send(());
                pubsub.get_message()
            })
        })
        .collect();
    for _ in 0..listeners.len() {
        subscribed.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let late = vec!["spread.late".to_owned()];
    let env = c.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = logging_shell_args(&c.exec_log(), 0);
    let out = cronmesh(
        c.dir(),
        &[
            "tasks",
            "add",
            &late[0],
            "--cron",
            "* * * * * *",
            "--handler",
            "shell",
            "--args",
            &args,
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("could not notify"),
        "{}",
        stderr(&out)
    );
    let added = Utc::now() + chrono::Duration::seconds(2);
    for (i, listener) in listeners.into_iter().enumerate() {
        let notice = listener.join().unwrap();
        assert!(
            notice.is_ok(),
            "master {i} passed no change notice on: {notice:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let until = Utc::now() - chrono::Duration::seconds(2);
    for n in &nodes {
        assert!(
            wait_degraded(n, false, Duration::from_secs(5)).await,
            "{}",
            n.log()
        );
    }
    // Every node listens for change notices on one of the masters.
    let listening: u64 = redis
        .masters
        .iter()
        .map(|m| {
            let counts: Vec<redis::Value> = m.query("PUBSUB", &["NUMSUB", "cronmesh:changes"]);
            redis::from_redis_value::<u64>(counts[1].clone()).unwrap()
        })
        .sum();
    assert_eq!(listening, 3, "subscribers of the change channel");
    for n in nodes {
        assert!(n.stop().success());
    }

    let mut expected = every_second_fires(&names, from, until);
    expected.extend(every_second_fires(&late, added, until));
    assert_exactly_once(&c.exec_log(), &c.runs().await, &expected);
    // The fire locks were spread over the masters by their task's slot.
    let used = redis
        .masters
        .iter()
        .filter(|m| m.calls_of("set") > 0)
        .count();
    assert!(used >= 2, "fire locks went to {used} of 3 masters");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sentinel_failover_mid_run_executes_no_fire_twice() {
    let mut redis = SentinelSet::start();
    let c = Cluster::with_redis_url(redis.url()).await;
    let names = c.add_every_second_tasks("ha.t", 5);
    let nodes = [c.node("n1", &[]), c.node("n2", &[])];
    let from = Utc::now() + chrono::Duration::seconds(2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    for n in &nodes {
        assert!(
            wait_degraded(n, false, Duration::from_secs(5)).await,
            "{}",
            n.log()
        );
    }

    // The master dies; the sentinel promotes the replica.
    redis.master.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while redis.master_port() != Some(redis.replica.port()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sentinel never promoted the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let locks_at_failover = redis.replica.calls_of("set");
    // The nodes find the new master by themselves.
    for n in &nodes {
        assert!(
            wait_degraded(n, false, Duration::from_secs(15)).await,
            "{}",
            n.log()
        );
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let until = Utc::now() - chrono::Duration::seconds(2);
    assert!(
        redis.replica.calls_of("set") > locks_at_failover,
        "fire locks are taken on the promoted replica"
    );
    for n in &nodes {
        assert!(
            n.log().contains("running degraded"),
            "{} did not notice the outage",
            n.url
        );
    }
    for n in nodes {
        assert!(n.stop().success());
    }
    let expected = every_second_fires(&names, from, until);
    assert_exactly_once(&c.exec_log(), &c.runs().await, &expected);
}
