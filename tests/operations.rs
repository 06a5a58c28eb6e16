//! docs/operations.md's Prometheus rules: valid for `promtool check rules` (when Debian's
//! prometheus package is installed, as scripts/services.sh does), and naming only metrics a
//! node exports.

use std::collections::BTreeSet;
use std::path::Path;

fn rules_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/cronmesh-rules.yml")
}

#[test]
fn the_alert_rules_name_only_metrics_a_node_exports() {
    let rules = std::fs::read_to_string(rules_path()).unwrap();
    // An empty node's metrics: every metric's `# TYPE` line is there.
    let empty: scheduler_actors::MetricsSnapshot = serde_json::from_value(serde_json::json!({
        "actors": [], "fires_total": 0, "runs_total": {}, "persistence_buffered": 0,
        "persistence_buffer_bound": 0, "persistence_dropped_writes": 0, "degraded": false
    }))
    .unwrap();
    let exported: BTreeSet<String> = empty
        .prometheus()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut named = BTreeSet::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        let mut rest = line;
        while let Some(i) = rest.find("cronmesh_") {
            let word: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + word.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .unwrap_or(&word)
                .to_owned();
            named.insert(base);
        }
    }
    assert!(named.len() >= 8, "{named:?}");
    for metric in &named {
        assert!(
            exported.contains(metric),
            "the rules name {metric}, which no node exports: {exported:?}"
        );
    }
    let alerts = rules.matches("- alert: ").count();
    assert!(alerts >= 10, "{alerts} rules");
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(rules_path())
        .output()
    else {
        // Without Debian's prometheus package the test above is the check.
        eprintln!("promtool is not installed; the rules were checked by the metric-name test only");
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}
