//! What the CLI does with a database it should not change, a database it cannot reach and a
//! name that is not there: the exit code (2 only for the user's own input) and a message that
//! says each cause once and what to do.

use migration::{Migrator, MigratorTrait};

use crate::support::postgres::TempDatabase;
use crate::support::{cronmesh, stderr, stdout};

/// The commands that only read.
const READ_COMMANDS: [&[&str]; 5] = [
    &["tasks", "list"],
    &["tasks", "show", "a.b"],
    &["runs"],
    &["nodes"],
    &["triggers", "list"],
];

/// Adds the task `a.b`.
const ADD_A_B: &[&str] = &[
    "tasks",
    "add",
    "a.b",
    "--cron",
    "@daily",
    "--handler",
    "noop",
];

/// Runs `cronmesh ARGS` in `dir` and insists that it succeeds.
fn succeeds(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = cronmesh(dir, args, &[]);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

/// The error line of a failed command, checked for a cause said twice.
fn error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err:?}"))
        .to_owned();
    // Each part, and each URL in it, stands once in the line.
    let parts: Vec<&str> = line.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        for (j, other) in parts.iter().enumerate() {
            assert!(
                i == j || part.len() < 12 || !other.contains(part),
                "{part:?} is said twice in {line:?}"
            );
        }
    }
    for url in line.split_whitespace().filter(|w| w.contains("://")) {
        let url = url.trim_end_matches(':');
        assert_eq!(
            line.matches(url).count(),
            1,
            "{url} is named twice in {line:?}"
        );
    }
    line
}

#[test]
fn read_commands_on_a_new_sqlite_path_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in READ_COMMANDS {
        let out = cronmesh(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("sqlite://cronmesh.db"), "{args:?}: {line}");
        assert!(line.contains("run 'cronmesh migrate'"), "{args:?}: {line}");
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(files.is_empty(), "{args:?} created {files:?}");
    }
}

#[tokio::test]
async fn read_commands_on_a_postgres_database_without_schema_create_nothing() {
    let temp = TempDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CRONMESH__DATABASE__URL", temp.url())];
    for args in READ_COMMANDS {
        let out = cronmesh(dir.path(), args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            error_line(&out).contains("has no cronmesh schema"),
            "{}",
            stderr(&out)
        );
    }
    let db = store::connect(temp.url()).await.unwrap();
    assert_eq!(
        store::schema_state(&db).await.unwrap(),
        store::SchemaState::Missing,
        "nothing was migrated"
    );
    let manager = migration::SchemaManager::new(&db);
    assert!(!manager.has_table("seaql_migrations").await.unwrap());
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_schema_behind_the_binary_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cronmesh.db").display());
    let db = store::connect(&url).await.unwrap();
    Migrator::up(&db, Some(1)).await.unwrap();
    let migrations = Migrator::migrations();
    let have = migrations[0].name().to_owned();
    let need = migrations.last().unwrap().name().to_owned();
    db.close().await.unwrap();

    let expected =
        format!("database schema is at {have}, this cronmesh needs {need}: run 'cronmesh migrate'");
    for args in READ_COMMANDS
        .iter()
        .copied()
        .chain([&["tasks", "disable", "a.b"][..], ADD_A_B])
    {
        let out = cronmesh(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(error_line(&out).contains(&expected), "{}", stderr(&out));
    }
    let db = store::connect(&url).await.unwrap();
    assert!(
        matches!(
            store::schema_state(&db).await.unwrap(),
            store::SchemaState::Behind { .. }
        ),
        "no command but migrate upgraded it"
    );
    db.close().await.unwrap();

    succeeds(dir.path(), &["migrate"]);
    succeeds(dir.path(), &["tasks", "list", "--json"]);
}

#[tokio::test]
async fn a_schema_from_a_newer_cronmesh_is_refused_and_left_alone() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cronmesh.db").display());
    let db = store::connect(&url).await.unwrap();
    store::migrate(&db).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_later', 0)",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    for args in [&["tasks", "list"][..], &["migrate"]] {
        let out = cronmesh(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("m29991231_000001_later"), "{line}");
        assert!(line.contains("newer than this cronmesh knows"), "{line}");
    }
}

#[test]
fn adding_on_a_brand_new_embedded_database_creates_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let nightly = r#"{"type":"cron","expr":"0 2 * * *","timezone":"UTC"}"#;
    let created = "created it with the cronmesh schema";
    let first = succeeds(dir.path(), &["triggers", "add", "nightly", nightly]);
    assert!(stderr(&first).contains(created), "{}", stderr(&first));
    let add = [
        "tasks",
        "add",
        "a.b",
        "--trigger-conf",
        "nightly",
        "--handler",
        "noop",
    ];
    let again = succeeds(dir.path(), &add);
    assert!(
        !stderr(&again).contains(created),
        "only a new database is created: {}",
        stderr(&again)
    );
    let list = succeeds(dir.path(), &["tasks", "list", "--json"]);
    assert!(stdout(&list).contains("\"a.b\""), "{}", stdout(&list));
}

#[test]
fn an_unknown_task_named_by_the_user_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    succeeds(dir.path(), &["migrate"]);
    for (args, name) in [
        (&["tasks", "show", "no.such"][..], "\"no.such\""),
        (&["tasks", "enable", "no.such"], "\"no.such\""),
        (&["tasks", "run-now", "no.such"], "\"no.such\""),
        (&["tasks", "remove", "no.such"], "\"no.such\""),
        (
            &["tasks", "set-trigger", "no.such", "--cron", "@daily"],
            "\"no.such\"",
        ),
        (&["triggers", "remove", "no-such"], "\"no-such\""),
    ] {
        let out = cronmesh(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains(name), "{args:?}: {line}");
    }
    let add = |cron| {
        [
            "tasks",
            "add",
            "dup.task",
            "--cron",
            cron,
            "--handler",
            "noop",
        ]
    };
    succeeds(dir.path(), &add("@daily"));
    let dup = cronmesh(dir.path(), &add("@hourly"), &[]);
    assert_eq!(dup.status.code(), Some(2), "{}", stderr(&dup));
    assert!(error_line(&dup).contains("already exists"));
}

#[test]
fn an_unreachable_database_is_a_failure_not_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    // A closed port on loopback: nothing listens on 1. The password in both of its forms.
    let cases = [
        (
            &["tasks", "list"][..],
            "postgres://cron:s3cret@127.0.0.1:1/cron",
            "postgres://cron:***@127.0.0.1:1/cron",
        ),
        (
            &["tasks", "enable", "a.b"],
            "postgres://127.0.0.1:1/cron?user=cron&password=s3cret",
            "postgres://127.0.0.1:1/cron?user=cron&password=***",
        ),
    ];
    for (args, url, shown) in cases {
        let out = cronmesh(dir.path(), args, &[("CRONMESH__DATABASE__URL", url)]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let line = error_line(&out);
        let expected = format!("error: connecting to database {shown}");
        assert!(line.starts_with(&expected), "{line}");
        assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    }
}

#[test]
fn a_database_url_that_does_not_parse_is_bad_input_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://cron:pa/s3cret@127.0.0.1:1/cron",
        "postgres://cron:p@s3cret@127.0.0.1:notaport/cron",
        "sqlite:",
        "sqlite://",
    ] {
        let out = cronmesh(
            dir.path(),
            &["tasks", "list"],
            &[("CRONMESH__DATABASE__URL", url)],
        );
        assert_eq!(out.status.code(), Some(2), "{url}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("`database.url`"), "{line}");
        assert!(!stderr(&out).contains("s3cret"), "{}", stderr(&out));
    }
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "nothing was created: {files:?}");
}

#[test]
fn help_says_what_cronmesh_is() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(dir.path(), &["--help"], &[]);
    assert!(out.status.success());
    let help = stdout(&out);
    let first = help.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("cronmesh: a distributed cron scheduler"),
        "{first}"
    );
    for command in [
        "run", "tasks", "triggers", "runs", "nodes", "migrate", "check",
    ] {
        assert!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(command)),
            "{command} missing from {help}"
        );
    }
}

/// `cronmesh ARGS` in `dir` as a user who may read but not write the database: `nobody` when
/// the tests run as root (root writes every file), else this user.
fn as_reader(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::fs::MetadataExt;
    // A file this process made is owned by its effective user.
    let root = std::fs::metadata(dir.join("cronmesh.db")).is_ok_and(|m| m.uid() == 0);
    let mut cmd = if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(crate::support::cronmesh_bin());
        c
    } else {
        std::process::Command::new(crate::support::cronmesh_bin())
    };
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CRONMESH__DATABASE__URL");
    cmd.envs(env.iter().copied());
    cmd.output().expect("cronmesh runs")
}

#[test]
fn a_database_this_user_cannot_write_serves_reads_and_refuses_writes_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    succeeds(dir.path(), ADD_A_B);
    // The file and its directory read-only: SQLite cannot make the WAL's shared-memory file.
    let set_mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(&dir.path().join("cronmesh.db"), 0o444);
    set_mode(dir.path(), 0o555);
    for args in READ_COMMANDS {
        let out = as_reader(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let list = as_reader(dir.path(), &["tasks", "list"], &[]);
    assert!(stdout(&list).contains("a.b"), "{}", stdout(&list));
    let disable = as_reader(dir.path(), &["tasks", "disable", "a.b"], &[]);
    assert_eq!(disable.status.code(), Some(1), "{}", stderr(&disable));
    assert!(
        error_line(&disable).contains("the database is read-only"),
        "{}",
        stderr(&disable)
    );
    set_mode(dir.path(), 0o755);
    set_mode(&dir.path().join("cronmesh.db"), 0o644);
    let show = succeeds(dir.path(), &["tasks", "show", "a.b"]);
    assert!(
        stdout(&show).contains("\"enabled\": true"),
        "nothing changed"
    );
}

#[test]
fn a_database_opened_with_mode_ro_serves_reads_and_refuses_writes_clearly() {
    let dir = tempfile::tempdir().unwrap();
    succeeds(dir.path(), ADD_A_B);
    let read_only = [("CRONMESH__DATABASE__URL", "sqlite://cronmesh.db?mode=ro")];
    for args in READ_COMMANDS {
        let out = cronmesh(dir.path(), args, &read_only);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    for args in [
        &["tasks", "disable", "a.b"][..],
        &[
            "tasks",
            "add",
            "c.d",
            "--cron",
            "@daily",
            "--handler",
            "noop",
        ],
    ] {
        let out = cronmesh(dir.path(), args, &read_only);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            error_line(&out).contains("the database is read-only"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let list = succeeds(dir.path(), &["tasks", "list", "--json"]);
    let tasks: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "nothing added");
    assert_eq!(tasks[0]["enabled"], true, "nothing changed");
}
