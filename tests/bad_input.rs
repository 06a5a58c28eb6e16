//! The bad-input corpus: each row a command, the exit code it must end with, a fragment its
//! message must hold; and after all of them, nothing was written.

use crate::support::{cronmesh, stderr, stdout};

/// (arguments, environment, exit code, message fragment)
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

const CASES: &[Case<'static>] = &[
    (
        &[
            "tasks",
            "add",
            "a.b",
            "--cron",
            "0 0 32 * *",
            "--handler",
            "noop",
        ],
        &[],
        2,
        "day-of-month 32",
    ),
    (
        &[
            "tasks",
            "add",
            "a.b",
            "--cron",
            "@daily",
            "--tz",
            "Mars/Base",
            "--handler",
            "noop",
        ],
        &[],
        2,
        "\"Mars/Base\"",
    ),
    (
        &[
            "tasks",
            "add",
            "a.b",
            "--cron",
            "@daily",
            "--handler",
            "noop",
            "--misfire",
            "fire_all:99999999999999",
        ],
        &[],
        2,
        "at most 4294967295",
    ),
    (
        &[
            "tasks",
            "add",
            "a.b",
            "--trigger-json",
            r#"{"type":"date","run_at":"2030-01-01T00:00:00Z"}"#,
            "--tz",
            "Europe/Berlin",
            "--handler",
            "noop",
        ],
        &[],
        2,
        "--cron",
    ),
    (
        &[
            "tasks",
            "add",
            "a.b",
            "--cron",
            "@daily",
            "--handler",
            "http",
            "--args",
            r#"{"url":"http://127.0.0.1:1/","timeout_secs":0}"#,
        ],
        &[],
        2,
        "timeout_secs 0",
    ),
    (
        &[
            "tasks",
            "add",
            "cronmesh.mine",
            "--cron",
            "@daily",
            "--handler",
            "noop",
        ],
        &[],
        2,
        "reserved",
    ),
    (
        &["tasks", "remove", "cronmesh.prune_runs"],
        &[],
        2,
        "built in",
    ),
    (
        &[
            "triggers",
            "add",
            "bad\nname",
            r#"{"type":"cron","expr":"@daily","timezone":"UTC"}"#,
        ],
        &[],
        2,
        "'\\n'",
    ),
    (&["runs", "--limit", "0"], &[], 2, "--limit 0"),
    (&["inspect", "--url", "not a url"], &[], 2, "\"not a url\""),
    (
        &["tasks", "list"],
        &[("CRONMESH__DATABASE__URL", "sqlite:")],
        2,
        "`database.url`",
    ),
    (
        &["tasks", "list"],
        &[("CRONMESH__REDIS__URL", "redis://127.0.0.1:99999")],
        2,
        "`redis.url`",
    ),
];

#[tokio::test]
async fn every_bad_input_is_refused_with_its_reason_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cronmesh.db").display());
    let db = store::connect(&url).await.unwrap();
    store::migrate(&db).await.unwrap();
    // The built-in task as a node would have registered it.
    let prune = scheduler_core::TaskDecl::cron("cronmesh.prune_runs", "17 3 * * *")
        .handler("cronmesh::prune_runs");
    store::sync_code_tasks(&db, &[prune], &|_| true)
        .await
        .unwrap();

    let long_name = "x".repeat(100_000);
    let json = r#"{"type":"cron","expr":"@daily","timezone":"UTC"}"#;
    let long_conf: [&str; 4] = ["triggers", "add", &long_name, json];
    let long_task: [&str; 7] = [
        "tasks",
        "add",
        &long_name,
        "--cron",
        "@daily",
        "--handler",
        "noop",
    ];
    let long_show: [&str; 3] = ["tasks", "show", &long_name];
    let long_conf_of_task: [&str; 7] = [
        "tasks",
        "add",
        "a.b",
        "--trigger-conf",
        &long_name,
        "--handler",
        "noop",
    ];
    let mut all: Vec<Case<'_>> = CASES.to_vec();
    all.push((&long_conf, &[], 2, "100000 characters"));
    all.push((&long_task, &[], 2, "longer than 200 characters"));
    all.push((&long_show, &[], 2, "(100000 characters)"));
    all.push((&long_conf_of_task, &[], 2, "no shared trigger conf named"));
    for (args, env, code, fragment) in all {
        let out = cronmesh(dir.path(), args, env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{:?}: {err}", &args[..2]);
        assert!(
            err.contains(fragment),
            "{:?}: {fragment:?} not in {err}",
            &args[..2]
        );
        assert!(
            err.len() < 500,
            "{:?}: the message stays short: {} bytes",
            &args[..2],
            err.len()
        );
    }

    let tasks = store::load_tasks(&db).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.row.name.as_str()).collect();
    assert_eq!(
        names,
        ["cronmesh.prune_runs"],
        "nothing added, nothing removed"
    );
    assert!(store::list_trigger_confs(&db).await.unwrap().is_empty());
    let runs = cronmesh(dir.path(), &["runs", "--json"], &[]);
    assert_eq!(stdout(&runs).trim(), "[]");
}

#[test]
fn what_is_accepted_but_likely_a_mistake_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let past_date = r#"{"type":"date","run_at":"2020-01-01T00:00:00Z"}"#;
    let ended =
        r#"{"type":"cron","expr":"@daily","timezone":"UTC","end_at":"2021-01-01T00:00:00Z"}"#;
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "tasks",
                "add",
                "old.date",
                "--trigger-json",
                past_date,
                "--handler",
                "noop",
            ],
            "warning: task old.date will never fire: its date is in the past",
        ),
        (
            &[
                "tasks",
                "add",
                "old.ended",
                "--trigger-json",
                ended,
                "--handler",
                "noop",
            ],
            "warning: task old.ended will never fire: its end_at has passed",
        ),
        (
            &["triggers", "add", "ended", ended],
            "warning: trigger conf ended will never fire: its end_at has passed",
        ),
        (
            &[
                "tasks",
                "add",
                "old.conf",
                "--trigger-conf",
                "ended",
                "--handler",
                "noop",
            ],
            "warning: task old.conf will never fire: its end_at has passed",
        ),
        (
            &[
                "tasks",
                "set-trigger",
                "old.conf",
                "--trigger-json",
                past_date,
            ],
            "warning: task old.conf will never fire: its date is in the past",
        ),
        (
            &["triggers", "set", "ended", past_date],
            "warning: trigger conf ended will never fire: its date is in the past",
        ),
    ];
    for (args, warning) in cases {
        let out = cronmesh(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(warning), "{args:?}: {}", stderr(&out));
    }
    // A trigger that fires gets no warning.
    let out = cronmesh(
        dir.path(),
        &[
            "tasks",
            "add",
            "a.daily",
            "--cron",
            "@daily",
            "--handler",
            "noop",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));

    // Environment variables that look like settings but are not read are named (not their
    // values: they may be secrets); the setting is not taken from them.
    let out = cronmesh(
        dir.path(),
        &["tasks", "list"],
        &[
            ("CRONMESH_DATABASE__URL", "sqlite://elsewhere-s3cret.db"),
            ("CRONMESH__DATABASE__URL", "sqlite://cronmesh.db"),
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: environment variable CRONMESH_DATABASE__URL is not read"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!dir.path().join("elsewhere-s3cret.db").exists());
}
