//! The application's binary knows its own tasks through every cronmesh subcommand.
#![allow(missing_docs)]

use std::process::Command;

#[test]
fn check_lists_the_applications_tasks() {
    let dir = std::env::temp_dir().join(format!("embedded-app-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_embedded-app"))
        .arg("check")
        .current_dir(&dir)
        .output()
        .expect("the example runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("orders.expire_unpaid") && stdout.contains("orders.daily_summary"),
        "{stdout}"
    );
    assert!(stdout.contains("Europe/Berlin"), "{stdout}");
}
