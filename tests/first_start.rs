//! Processes that start together on a new database: every node of a cluster comes up, and of
//! several `tasks add` of one name exactly one wins while the others are told the name is
//! taken.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::node::free_port;
use crate::support::postgres::TempDatabase;
use crate::support::{cronmesh_bin, stderr, stdout};

/// `cronmesh ARGS` in `dir` with `env`, started now and not waited for.
fn spawn(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(cronmesh_bin());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("CRONMESH__") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .spawn()
        .expect("cronmesh starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_starting_at_once_on_a_new_postgres_database_all_run() {
    for round in 0..3 {
        let pg = TempDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Child> = (0..3)
            .map(|i| {
                let bind = format!("127.0.0.1:{}", free_port());
                let id = format!("first-{round}-{i}");
                let env = [
                    ("CRONMESH__DATABASE__URL", pg.url()),
                    ("CRONMESH__HTTP__BIND", bind.as_str()),
                    ("CRONMESH__NODE__ID", id.as_str()),
                    ("CRONMESH__DEMO__ENABLED", "false"),
                ];
                spawn(dir.path(), &["run"], &env)
            })
            .collect();
        let db = store::connect(pg.url()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let running = loop {
            for node in &mut nodes {
                if let Some(status) = node.try_wait().unwrap() {
                    let out = node.stderr.take().map(|mut e| {
                        let mut s = String::new();
                        std::io::Read::read_to_string(&mut e, &mut s).ok();
                        s
                    });
                    panic!("round {round}: a node exited ({status}): {out:?}");
                }
            }
            let running = store::list_nodes(&db)
                .await
                .map(|n| n.iter().filter(|n| n.state.as_str() == "running").count())
                .unwrap_or(0);
            if running == 3 || Instant::now() > deadline {
                break running;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            running, 3,
            "round {round}: every node registered as running"
        );
        for node in &mut nodes {
            kill(Pid::from_raw(node.id() as i32), Signal::SIGTERM).unwrap();
        }
        for node in &mut nodes {
            assert!(node.wait().unwrap().success(), "round {round}: clean stop");
        }
        db.close().await.unwrap();
    }
}

#[test]
fn of_five_adds_of_one_name_at_once_on_a_new_sqlite_file_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let add = [
        "tasks",
        "add",
        "race.task",
        "--cron",
        "@daily",
        "--handler",
        "noop",
    ];
    let adds: Vec<Child> = (0..5).map(|_| spawn(dir.path(), &add, &[])).collect();
    let outs: Vec<std::process::Output> = adds
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        won,
        1,
        "exactly one add wins: {:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    for out in outs.iter().filter(|o| !o.status.success()) {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("\"race.task\" already exists"), "{err}");
        assert_eq!(err.matches("already exists").count(), 1, "said once: {err}");
    }
    let list = cronmesh_list(dir.path());
    assert_eq!(list.matches("race.task").count(), 1, "{list}");
}

fn cronmesh_list(dir: &std::path::Path) -> String {
    let out = crate::support::cronmesh(dir, &["tasks", "list", "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}
