//! docs/guide.md's trigger demo: the schedules people ask for most, each with its expression
//! or trigger JSON and its next three fires from a fixed instant, generated here and compared
//! with the guide. With `CRONMESH_WRITE_GUIDE=1` the test writes the block instead.

use std::path::Path;

use chrono::{DateTime, Utc};
use scheduler_core::Trigger;

const FROM: &str = "2027-03-12T00:00:00Z";
const START: &str = "<!-- trigger demo: tests/guide.rs -->\n";
const END: &str = "<!-- end of trigger demo -->";

/// (what people ask for, the trigger JSON)
fn asks() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let cron = |expr: &str, zone: &str| json!({"type": "cron", "expr": expr, "timezone": zone});
    vec![
        (
            "Every weekday at 09:30 in Shanghai",
            cron("30 9 * * MON-FRI", "Asia/Shanghai"),
        ),
        (
            "Every 15 minutes during business hours (09:00-17:59, Monday to Friday)",
            cron("*/15 9-17 * * MON-FRI", "Europe/London"),
        ),
        (
            "The last Friday of the month at 18:00",
            cron("0 18 * * FRIL", "America/New_York"),
        ),
        (
            "The first Monday of the month at 08:00",
            cron("0 8 * * MON#1", "Europe/Berlin"),
        ),
        (
            "Every 90 seconds",
            json!({"type": "interval", "every_secs": 90, "anchor": "2027-01-01T00:00:00Z"}),
        ),
        ("Every 10 seconds", cron("*/10 * * * * *", "UTC")),
        ("Every 5 minutes", cron("*/5 * * * *", "UTC")),
        ("Every hour at :05", cron("5 * * * *", "UTC")),
        ("Every 2 hours, on the hour", cron("0 */2 * * *", "UTC")),
        ("Every day at midnight UTC", cron("@daily", "UTC")),
        (
            "Twice a day, 08:00 and 20:00 in Tokyo",
            cron("0 8,20 * * *", "Asia/Tokyo"),
        ),
        (
            "Every day at 02:30 in New York (the DST gap moves it to 03:00)",
            cron("30 2 * * *", "America/New_York"),
        ),
        (
            "Weekends at 10:00 in New York",
            cron("0 10 * * SAT,SUN", "America/New_York"),
        ),
        (
            "Business days at 17:45 in London",
            cron("45 17 * * 1-5", "Europe/London"),
        ),
        (
            "Sundays at 03:00 in Berlin",
            cron("0 3 * * SUN", "Europe/Berlin"),
        ),
        (
            "The last day of the month at 23:00",
            cron("0 23 L * *", "UTC"),
        ),
        (
            "The 1st and 15th of the month at 06:00",
            cron("0 6 1,15 * *", "UTC"),
        ),
        (
            "Quarterly: the first day of January, April, July, October",
            cron("0 6 1 JAN,APR,JUL,OCT *", "UTC"),
        ),
        (
            "Friday the 13th only (both day fields must match)",
            json!({"type": "cron", "expr": "0 9 13 * FRI", "timezone": "UTC", "day_match": "all"}),
        ),
        (
            "Once, at a given instant",
            json!({"type": "date", "run_at": "2027-04-01T09:00:00Z"}),
        ),
    ]
}

fn zone_of(trigger: &serde_json::Value) -> chrono_tz::Tz {
    trigger["timezone"]
        .as_str()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The demo as the guide shows it.
fn demo() -> String {
    let from: DateTime<Utc> = FROM.parse().unwrap();
    let mut out = String::new();
    for (i, (ask, json)) in asks().iter().enumerate() {
        let trigger =
            Trigger::from_json(&json.to_string()).unwrap_or_else(|e| panic!("{ask}: {e}"));
        let zone = zone_of(json);
        let written = match json["type"].as_str() {
            Some("cron") if json.get("day_match").is_none() => format!(
                "`cronmesh tasks add NAME --cron \"{}\" --tz {}`",
                json["expr"].as_str().unwrap(),
                zone.name()
            ),
            _ => format!("`--trigger-json '{}'`", trigger.to_json()),
        };
        let mut fires = Vec::new();
        let mut t = from;
        while fires.len() < 3 {
            match trigger.next_fire_after(t) {
                Some(next) => {
                    fires.push(
                        next.with_timezone(&zone)
                            .format("%a %Y-%m-%d %H:%M:%S %Z")
                            .to_string(),
                    );
                    t = next;
                }
                None => break,
            }
        }
        if fires.is_empty() {
            fires.push("no fire after the start".to_owned());
        }
        out.push_str(&format!(
            "{}. **{ask}**: {written}  \n   In words: {}. Next: {}.\n",
            i + 1,
            scheduler_core::describe(&trigger),
            fires.join(", ")
        ));
    }
    out
}

#[test]
fn the_guides_trigger_demo_is_what_cronmesh_computes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guide.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = guide.split_once(START).expect("the demo's start marker");
    let (_, tail) = rest.split_once(END).expect("the demo's end marker");
    let wanted = format!("{head}{START}{}{END}{tail}", demo());
    if std::env::var_os("CRONMESH_WRITE_GUIDE").is_some() {
        std::fs::write(&path, wanted).unwrap();
        return;
    }
    assert!(
        guide == wanted,
        "docs/guide.md's trigger demo is stale; run this test with CRONMESH_WRITE_GUIDE=1. It should read:\n{}",
        demo()
    );
    assert_eq!(asks().len(), 20);
}
