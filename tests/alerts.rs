//! Alerts to local webhook receivers: Slack's payload and escaping, the signed JSON payload
//! (checked with Python's own hmac), each event kind, throttling with the held-back count,
//! retries after a 500, a receiver that never answers not slowing fires, the dead-man check,
//! `cronmesh alerts test`, the deliveries in the API.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scheduler_actors::alerts::{AlertConfig, AlertRoute, AlertRouteSpec, RetryPolicy};
use scheduler_actors::{CodeTasks, NodeBuilder, NodeConfig, TaskContext, TaskFailure};
use scheduler_core::TaskDecl;

use crate::support::receiver::{Received, Receiver};
use crate::support::{cronmesh, stderr, stdout, venv_program};

const SECRET: &str = "a-secret-of-the-json-route";

fn route(name: &str, url: String, format: &str, on: &[&str], min_interval: u64) -> AlertRoute {
    AlertRoute::from_spec(
        "test",
        AlertRouteSpec {
            name: name.to_owned(),
            url,
            format: format.to_owned(),
            on: Some(on.iter().map(|s| (*s).to_owned()).collect()),
            tasks: Some("alerts.*".to_owned()),
            secret: Some(SECRET.to_owned()),
            min_interval_secs: Some(min_interval),
            ..AlertRouteSpec::default()
        },
    )
    .expect("a valid route")
}

async fn failing(_ctx: TaskContext) -> Result<(), TaskFailure> {
    Err(TaskFailure {
        message: "<script>&alert(1)</script> broke".to_owned(),
        output: Some("out <b>&</b>\n".to_owned()),
    })
}

async fn panicking(_ctx: TaskContext) -> Result<(), TaskFailure> {
    panic!("index 7 out of range")
}

async fn slow(ctx: TaskContext) -> Result<(), TaskFailure> {
    ctx.cancel.cancelled().await;
    Ok(())
}

/// Whether Python's hmac agrees with the signature header: computed independently of
/// cronmesh's code.
fn signature_ok(r: &Received) -> bool {
    let ts = &r.headers["x-cronmesh-timestamp"];
    let script = "import hmac,hashlib,sys; print('sha256=' + hmac.new(sys.argv[1].encode(), sys.argv[2].encode() + b'.' + sys.stdin.buffer.read(), hashlib.sha256).hexdigest())";
    let mut child = Command::new(venv_program("bin/python"))
        .args(["-c", script, SECRET, ts])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == r.headers["x-cronmesh-signature"]
}

#[test]
fn alerts_arrive_formatted_signed_throttled_and_retried_without_slowing_fires() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
    let hooks = Receiver::start();
    let dead = Receiver::silent();
    // The retry route's receiver fails twice before it takes one.
    hooks.plan("/retry", &[500, 500]);
    let flaky_runs = Arc::new(AtomicUsize::new(0));
    let flaky = {
        let runs = flaky_runs.clone();
        Arc::new(move |_ctx: TaskContext| {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(TaskFailure::new("not yet"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let every_second = |name: &str| {
        TaskDecl::cron(name, "* * * * * *").overlap(scheduler_core::OverlapPolicy::Allow)
    };
    let tasks = CodeTasks::new()
        .with_handler(every_second("alerts.fails"), "t::fails", Arc::new(failing))
        .with_handler(
            every_second("alerts.panics"),
            "t::panics",
            Arc::new(panicking),
        )
        .with_handler(
            every_second("alerts.slow").timeout_secs(1),
            "t::slow",
            Arc::new(slow),
        )
        .with_handler(every_second("alerts.flaky"), "t::flaky", flaky)
        .with_handler(every_second("quiet.fails"), "t::quiet", Arc::new(failing));
    let bad = ["failed", "panicked", "timed_out", "recovered"];
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        shutdown_grace: Duration::from_secs(2),
        alerts: AlertConfig {
            console_url: Some("http://127.0.0.1:8080".to_owned()),
            routes: vec![
                route("slack", format!("{}/slack", hooks.url), "slack", &bad, 0),
                route("json", format!("{}/json", hooks.url), "json", &bad, 0),
                route(
                    "throttled",
                    format!("{}/throttled", hooks.url),
                    "json",
                    &["failed"],
                    2,
                ),
                route(
                    "retry",
                    format!("{}/retry", hooks.url),
                    "json",
                    &["panicked"],
                    3600,
                ),
                route(
                    "dead",
                    format!("{}/dead", dead.url),
                    "slack",
                    &["failed"],
                    0,
                ),
            ],
            retry: RetryPolicy {
                attempts: 3,
                first_backoff: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
            },
        },
        ..NodeConfig::default()
    };

    let system = actix::System::new();
    let (db, metrics) = system.block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(6500)).await;
        let db = node.db().clone();
        let metrics = node.metrics();
        node.shutdown().await.unwrap();
        (db, metrics)
    });

    // Slack: a header, the fields, the error escaped (its three characters and nothing else),
    // the output in a code block, a link to the run.
    let slack = hooks.at("/slack");
    let failed = slack
        .iter()
        .map(Received::json)
        .find(|b| {
            b["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("alerts.fails failed")
        })
        .expect("a Slack alert for alerts.fails");
    let text = failed.to_string();
    assert!(
        text.contains("&lt;script&gt;&amp;alert(1)&lt;/script&gt; broke"),
        "{text}"
    );
    assert!(!text.contains("<script>"), "{text}");
    assert_eq!(failed["blocks"][0]["type"], "header");
    assert!(text.contains("```out &lt;b&gt;&amp;&lt;/b&gt;"), "{text}");
    assert!(text.contains("<http://127.0.0.1:8080/runs/"), "{text}");
    assert!(text.contains("*Task:* `alerts.fails`"), "{text}");

    // JSON: signed (Python agrees), every event kind of the route, nothing for other tasks.
    let json = hooks.at("/json");
    assert!(!json.is_empty());
    let mut kinds = std::collections::BTreeSet::new();
    for r in &json {
        assert!(signature_ok(r), "a bad signature on {:?}", r.json());
        let body = r.json();
        assert_ne!(
            body["task"], "quiet.fails",
            "a route matched outside its glob"
        );
        kinds.insert(body["event"].as_str().unwrap().to_owned());
    }
    for kind in bad {
        assert!(kinds.contains(kind), "no {kind} alert: {kinds:?}");
    }
    let recovered: Vec<_> = json
        .iter()
        .map(Received::json)
        .filter(|b| b["event"] == "recovered")
        .collect();
    assert_eq!(recovered.len(), 1, "one recovery: {recovered:?}");
    assert_eq!(recovered[0]["task"], "alerts.flaky");
    // A tampered body does not verify.
    let mut tampered = json[0].clone();
    tampered.body.push(b' ');
    assert!(!signature_ok(&tampered));

    // Throttled: one alert per 2 s for a task failing every second, the held-back ones
    // counted in the next.
    let throttled: Vec<_> = hooks.at("/throttled").iter().map(Received::json).collect();
    assert!((2..=4).contains(&throttled.len()), "{throttled:?}");
    assert!(
        throttled
            .iter()
            .skip(1)
            .any(|b| b["suppressed"].as_u64() >= Some(1)),
        "{throttled:?}"
    );

    // Retried: two 500s, then taken; sent once (later panics are throttled).
    assert_eq!(hooks.at("/retry").len(), 3);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let all = store::list_deliveries(
            &db,
            &store::DeliveryFilter {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let retry: Vec<_> = all.iter().filter(|d| d.route == "retry").collect();
        assert_eq!(retry.len(), 1, "{retry:?}");
        assert_eq!((retry[0].state.as_str(), retry[0].attempts), ("sent", 3));
        // The dead receiver's deliveries failed after their attempts, without its URL.
        let dead: Vec<_> = all.iter().filter(|d| d.route == "dead").collect();
        assert!(
            !dead.is_empty() && dead.iter().all(|d| d.state == "failed" && d.attempts == 3),
            "{dead:?}"
        );
        assert!(
            dead.iter()
                .all(|d| !d.error.clone().unwrap_or_default().contains("127.0.0.1"))
        );
        // The dead receiver held up nothing: every second's fire of the healthy path ran,
        // on time.
        let runs = crate::support::node::runs_of(&db, "alerts.fails").await;
        assert!(runs.len() >= 6, "{}", runs.len());
        for r in &runs {
            let late = r.started_at.timestamp_millis() - r.fire_ts_ms;
            // On time (a loaded 2-core machine allowed for): a receiver that never answers
            // held up nothing.
            assert!(late < 1000, "a fire {late} ms late");
        }
    });
    assert!(
        metrics.alerts_total.get("failed").copied().unwrap_or(0) >= 1,
        "{:?}",
        metrics.alerts_total
    );
    assert!(metrics.alerts_total.get("sent").copied().unwrap_or(0) >= 5);
    assert!(metrics.alerts_total.get("suppressed").copied().unwrap_or(0) >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_test_sends_a_sample_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = Receiver::start();
    let closed = crate::support::node::free_port();
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        format!(
            "[alerts]\nconsole_url = \"http://127.0.0.1:8080/\"\nretry_attempts = 1\ntimeout_secs = 2\n\n\
             [[alerts.routes]]\nname = \"ops\"\nurl = \"{}/hook/T000/SECRETPART\"\nformat = \"slack\"\n\n\
             [[alerts.routes]]\nname = \"nowhere\"\nurl = \"http://127.0.0.1:{closed}/SECRETPART\"\nformat = \"slack\"\n",
            hooks.url
        ),
    )
    .unwrap();
    let out = cronmesh(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cronmesh(dir.path(), &["alerts", "test", "ops"], &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = hooks.at("/hook/T000/SECRETPART");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("test alert")
    );

    let out = cronmesh(dir.path(), &["alerts", "test", "nowhere"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let shown = format!("{}{}", stdout(&out), stderr(&out));
    assert!(shown.contains("not delivered"), "{shown}");
    assert!(!shown.contains("SECRETPART"), "the URL leaked: {shown}");

    let out = cronmesh(dir.path(), &["alerts", "test", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the routes are ops, nowhere"),
        "{}",
        stderr(&out)
    );

    // Both deliveries are recorded, and listed.
    let out = cronmesh(dir.path(), &["alerts", "list", "--json"], &[]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["failed", "sent"]);
    assert!(!stdout(&out).contains("SECRETPART"));

    // A bad route is refused at start, naming the key.
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        "[[alerts.routes]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/h\"\nformat = \"teams\"\n",
    )
    .unwrap();
    let out = cronmesh(dir.path(), &["alerts", "list"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`alerts.routes[0].format` (route \"x\"): \"teams\" is not a format"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_misfired_tasks_alert_once_and_deliveries_show_in_the_api() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let dir = tempfile::tempdir().unwrap();
    let hooks = Receiver::start();
    std::fs::write(
        dir.path().join("cronmesh.toml"),
        format!(
            "[[alerts.routes]]\nname = \"ops\"\nurl = \"{}/ops\"\nformat = \"json\"\nsecret = \"{SECRET}\"\n\
             on = [\"silent\", \"misfired\"]\ntasks = \"watch.*\"\nmin_interval_secs = 0\n",
            hooks.url
        ),
    )
    .unwrap();
    let add = |name: &str, cron: &str, extra: &[&str]| {
        let mut args = vec!["tasks", "add", name, "--cron", cron, "--handler", "noop"];
        args.extend_from_slice(extra);
        let out = cronmesh(dir.path(), &args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    // Never fires, so never succeeds: silent once it is older than its limit.
    add(
        "watch.never",
        "0 0 1 1 *",
        &["--alert-if-no-success-for", "60"],
    );
    add(
        "watch.skip",
        "* * * * * *",
        &["--misfire", "skip", "--misfire-grace", "0"],
    );
    let out = cronmesh(
        dir.path(),
        &[
            "tasks",
            "add",
            "watch.bad",
            "--cron",
            "* * * * *",
            "--handler",
            "noop",
            "--alert-if-no-success-for",
            "5",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("alert_if_no_success_for` is 5 s"),
        "{}",
        stderr(&out)
    );
    // As if it had been added two minutes ago.
    let db = crate::support::node::node_db(dir.path()).await;
    entity::prelude::ScheduledTask::update_many()
        .col_expr(
            entity::scheduled_task::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(2)),
        )
        .filter(entity::scheduled_task::Column::Name.eq("watch.never"))
        .exec(&db)
        .await
        .unwrap();

    // Misfired: fires missed while no node ran.
    let node = crate::support::node::NodeProcess::start(dir.path(), &[]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(node.stop().success());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let node = crate::support::node::NodeProcess::start(dir.path(), &[]);
    // Waited for by what it is: the dead-man check also runs at the top of every minute, and
    // its alert for `watch.never` may come first.
    let is_misfired =
        |r: &Received| r.json()["event"] == "misfired" && r.json()["task"] == "watch.skip";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let misfired = loop {
        let got = hooks.at("/ops");
        if got.iter().any(is_misfired) || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        misfired.iter().any(is_misfired),
        "{:?}",
        misfired.iter().map(Received::json).collect::<Vec<_>>()
    );

    // Silent: the dead-man check, run now twice: one alert for one silence.
    let silent = |got: &[Received]| {
        got.iter()
            .filter(|r| r.json()["event"] == "silent")
            .map(Received::json)
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        let out = cronmesh(
            dir.path(),
            &["tasks", "run-now", "cronmesh.alert_silence"],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let got = silent(&hooks.at("/ops"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["task"], "watch.never");
    assert!(
        got[0]["error"]
            .as_str()
            .unwrap()
            .contains("never succeeded"),
        "{}",
        got[0]
    );

    // The deliveries, through the API.
    let page: serde_json::Value =
        reqwest::get(format!("{}/api/v1/alerts?task=watch.never", node.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(
        (items[0]["event"].as_str(), items[0]["state"].as_str()),
        (Some("silent"), Some("sent"))
    );
    // And on the console's alerts page.
    let page = reqwest::get(format!("{}/alerts?task=watch.never", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("st-silent") && page.contains("watch.never"),
        "{page}"
    );
    assert!(!page.contains(&hooks.url), "the route's URL is shown");
    assert!(node.stop().success());

    // A task's own routes, from the CLI.
    let out = cronmesh(
        dir.path(),
        &[
            "tasks",
            "set-alerts",
            "watch.never",
            "--alert-route",
            "pager",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cronmesh(dir.path(), &["tasks", "show", "watch.never"], &[]);
    let task: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(task["alert_routes"], serde_json::json!(["pager"]));
    assert_eq!(task["alert_if_no_success_for_secs"], 60);
}

#[test]
fn runs_interrupted_by_a_shutdown_are_alerted_before_the_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
    let hooks = Receiver::start();
    let tasks = CodeTasks::new().with_handler(
        TaskDecl::cron("alerts.hangs", "* * * * * *").overlap(scheduler_core::OverlapPolicy::Allow),
        "t::hangs",
        Arc::new(slow),
    );
    let config = NodeConfig {
        database_url: url,
        http_bind: None,
        shutdown_grace: Duration::from_millis(300),
        alerts: AlertConfig {
            routes: vec![route(
                "ops",
                format!("{}/ops", hooks.url),
                "json",
                &["interrupted"],
                0,
            )],
            ..AlertConfig::default()
        },
        ..NodeConfig::default()
    };
    let system = actix::System::new();
    system.block_on(async move {
        let node = NodeBuilder::new(config)
            .code_tasks(tasks)
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        node.shutdown().await.unwrap();
    });
    // Delivered during the shutdown: nothing is waited for here.
    let got: Vec<_> = hooks.at("/ops").iter().map(Received::json).collect();
    assert!(!got.is_empty(), "no interrupted alert");
    assert!(
        got.iter()
            .all(|b| b["event"] == "interrupted" && b["task"] == "alerts.hangs"),
        "{got:?}"
    );
}

#[test]
fn a_code_tasks_alert_options_set_by_an_operator_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("alerts.db").display());
    let tasks = || {
        CodeTasks::new().with_handler(
            TaskDecl::cron("alerts.code", "0 0 1 1 *").alert_route("from-code"),
            "t::code",
            Arc::new(slow),
        )
    };
    let config = || NodeConfig {
        database_url: url.clone(),
        http_bind: None,
        ..NodeConfig::default()
    };
    let system = actix::System::new();
    system.block_on(async {
        let node = NodeBuilder::new(config())
            .code_tasks(tasks())
            .start()
            .await
            .unwrap();
        let db = node.db().clone();
        // The code's declaration gives the first value.
        assert_eq!(
            store::get_task(&db, "alerts.code")
                .await
                .unwrap()
                .decl()
                .alert_routes,
            ["from-code"]
        );
        store::update_task_decl(
            &db,
            "alerts.code",
            None,
            |d| {
                d.alert_routes = vec!["pager".to_owned()];
                d.alert_if_no_success_for_secs = Some(3600);
            },
            &|_| Ok(()),
            &store::Who::new("test"),
        )
        .await
        .unwrap();
        node.shutdown().await.unwrap();
        let node = NodeBuilder::new(config())
            .code_tasks(tasks())
            .start()
            .await
            .unwrap();
        let decl = store::get_task(node.db(), "alerts.code")
            .await
            .unwrap()
            .decl();
        assert_eq!(
            decl.alert_routes,
            ["pager"],
            "the code's sync undid the operator's routes"
        );
        assert_eq!(decl.alert_if_no_success_for_secs, Some(3600));
        node.shutdown().await.unwrap();
    });
}
