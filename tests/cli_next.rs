//! `cronmesh next` through the real binary.

use crate::support::{cronmesh, stderr, stdout};

#[test]
fn prints_fires_in_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(
        dir.path(),
        &[
            "next",
            "30 2 * * *",
            "--tz",
            "America/New_York",
            "--after",
            "2026-03-07T12:00:00Z",
            "-n",
            "3",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2026-03-08T03:00:00-04:00\n2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n"
    );
}

#[test]
fn json_output_has_utc_instants() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(
        dir.path(),
        &[
            "next",
            "30 2 * * *",
            "--tz",
            "America/New_York",
            "--after",
            "2026-03-07T12:00:00Z",
            "-n",
            "3",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["expr"], "30 2 * * *");
    assert_eq!(v["timezone"], "America/New_York");
    assert_eq!(
        v["fires"],
        serde_json::json!([
            "2026-03-08T07:00:00Z",
            "2026-03-09T06:30:00Z",
            "2026-03-10T06:30:00Z"
        ])
    );
}

#[test]
fn accepts_trigger_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = cronmesh(
        dir.path(),
        &[
            "next",
            "--trigger-json",
            r#"{"type":"interval","every_secs":90,"anchor":"2026-01-01T00:00:00Z"}"#,
            "--after",
            "2026-01-01T00:00:00Z",
            "-n",
            "2",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2026-01-01T00:01:30Z\n2026-01-01T00:03:00Z\n");
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["next", "0 0 32 * *"],
            "day-of-month 32 is out of range 1-31",
        ),
        (
            &["next", "@daily", "--tz", "Mars/Base"],
            "unknown time zone \"Mars/Base\"",
        ),
        (
            &[
                "next",
                "--trigger-json",
                r#"{"type":"interval","every_secs":60}"#,
            ],
            "anchor",
        ),
        (
            &["next", "@daily", "--after", "yesterday"],
            "--after \"yesterday\"",
        ),
    ];
    for (args, expected) in cases {
        let out = cronmesh(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
}
