//! Arbitrary input for the parsers: a cron expression, a zone, trigger JSON, a misfire policy
//! and any instant never make them panic; what they accept round-trips and computes fires.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use scheduler_core::cron_expr::CronExpr;
use scheduler_core::{MisfirePolicy, Trigger, plan_catch_up};
use serde_json::Value;

/// One field of something shaped like a cron expression: valid pieces, pieces out of range,
/// and characters cron uses in the wrong places.
fn cron_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("?".to_owned()),
        Just("L".to_owned()),
        (0u32..100).prop_map(|n| n.to_string()),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..70).prop_map(|n| format!("*/{n}")),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}/{b}")),
        (0u32..40).prop_map(|n| format!("{n}W")),
        (0u32..9, 0u32..7).prop_map(|(a, b)| format!("{a}#{b}")),
        prop::sample::select(vec![
            "MON",
            "fri",
            "JAN",
            "dec",
            "SUN-SAT",
            "MON-FRI",
            "LW",
            "5L",
            "L-3",
            "FRI#5",
            "7",
            "4294967296",
            "-1",
            "",
        ])
        .prop_map(str::to_owned),
        "[0-9,*/#LW?-]{1,6}",
    ]
}

/// Cron-shaped strings (5 to 7 fields, lists of pieces), macros, and anything at all.
fn cron_like() -> impl Strategy<Value = String> {
    let field = prop::collection::vec(cron_piece(), 1..3).prop_map(|v| v.join(","));
    prop_oneof![
        4 => prop::collection::vec(field, 5..=7).prop_map(|f| f.join(" ")),
        1 => prop::sample::select(vec![
            "@daily", "@hourly", "@weekly", "@monthly", "@yearly", "@annually", "@midnight",
            "@reboot", "@every 5m", "@", "  @daily  ",
        ])
        .prop_map(str::to_owned),
        2 => ".*",
    ]
}

fn zone() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham",
            "Asia/Kathmandu", "America/Sao_Paulo", "Antarctica/Troll", "Etc/GMT+12",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,20}",
    ]
}

/// Any instant chrono can hold, weighted towards the ends and the present.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp_millis();
    let max = DateTime::<Utc>::MAX_UTC.timestamp_millis();
    prop_oneof![
        2 => min..=max,
        1 => prop::sample::select(vec![min, min + 1, max - 1, max, 0, -1]),
        3 => 1_700_000_000_000i64..2_000_000_000_000,
    ]
    .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// JSON text fit for a field of a trigger: instants (valid, extreme, malformed), numbers of
/// every size, names of zones and expressions, and other JSON.
fn trigger_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        instant().prop_map(|t| Value::from(scheduler_core::rfc3339(t))),
        prop::sample::select(vec![
            "cron",
            "date",
            "interval",
            "0 30 2 * * *",
            "@daily",
            "*/5 * * * *",
            "UTC",
            "Europe/Berlin",
            "2026-03-29T02:30:00+01:00",
            "+275760-09-13T00:00:00Z",
            "-262143-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ])
        .prop_map(Value::from),
        cron_like().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Trigger JSON objects: a type (usually a real one) and fields drawn from the names the
/// variants use, each with an arbitrary value.
fn trigger_json() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "expr",
        "timezone",
        "start_at",
        "end_at",
        "run_at",
        "every_secs",
        "anchor",
        "extra",
    ]);
    let kind = prop_oneof![
        4 => prop::sample::select(vec!["cron", "date", "interval"]).prop_map(Value::from),
        1 => trigger_value(),
    ];
    prop_oneof![
        6 => plausible_trigger(),
        4 => (kind, prop::collection::btree_map(key, trigger_value(), 0..5)).prop_map(|(kind, fields)| {
            let mut object = serde_json::Map::new();
            object.insert("type".to_owned(), kind);
            for (k, v) in fields {
                object.insert(k.to_owned(), v);
            }
            Value::Object(object).to_string()
        }),
        1 => trigger_value().prop_map(|v| v.to_string()),
        1 => ".*",
    ]
}

/// Triggers shaped as a user writes them, each field usually valid.
fn plausible_trigger() -> impl Strategy<Value = String> {
    let time = || proptest::option::of(instant().prop_map(scheduler_core::rfc3339));
    let every = prop_oneof![3 => 0u64..100_000, 1 => any::<u64>()];
    prop_oneof![
        (cron_like(), zone(), time(), time()).prop_map(|(expr, zone, start, end)| {
            serde_json::json!({"type": "cron", "expr": expr, "timezone": zone, "start_at": start, "end_at": end})
        }),
        instant().prop_map(|t| serde_json::json!({"type": "date", "run_at": scheduler_core::rfc3339(t)})),
        (every, time()).prop_map(|(every, anchor)| {
            serde_json::json!({"type": "interval", "every_secs": every, "anchor": anchor})
        }),
    ]
    .prop_map(|v| v.to_string())
}

/// What is asked of every trigger that parsed: its JSON reads back as the same trigger, and
/// fires can be computed from any instant, always later than it.
fn check_trigger(trigger: &Trigger, at: DateTime<Utc>) -> Result<(), TestCaseError> {
    let again = Trigger::from_json(&trigger.to_json());
    prop_assert_eq!(again.as_ref().ok(), Some(trigger), "{:?}", again);
    let mut previous = at;
    for fire in trigger.fires_between(at, DateTime::<Utc>::MAX_UTC).take(3) {
        prop_assert!(fire > previous, "{} is not after {}", fire, previous);
        previous = fire;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn cron_expressions_parse_or_say_why_and_round_trip(expr in cron_like()) {
        match CronExpr::parse(&expr) {
            Ok(parsed) => {
                let written = parsed.to_string();
                prop_assert_eq!(CronExpr::parse(&written).ok(), Some(parsed));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn cron_triggers_in_any_zone_compute_fires_from_any_instant(
        expr in cron_like(),
        zone in zone(),
        at in instant(),
    ) {
        if let Ok(trigger) = Trigger::cron(&expr, &zone) {
            check_trigger(&trigger, at)?;
            // Every expression can be put in words (ending with its zone), without a panic.
            let words = scheduler_core::describe(&trigger);
            prop_assert!(words.ends_with(&format!(", {zone}")), "{}", words);
        }
    }

    #[test]
    fn trigger_json_parses_or_names_the_problem(json in trigger_json(), at in instant()) {
        match Trigger::from_json(&json) {
            Ok(trigger) => check_trigger(&trigger, at)?,
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.is_empty() && text.len() <= json.len() + 400, "{}", text);
            }
        }
    }

    #[test]
    fn catch_up_plans_hold_for_any_history(
        json in trigger_json(),
        last in proptest::option::of(instant()),
        now in instant(),
        policy in prop_oneof![
            Just("skip".to_owned()),
            Just("fire_once".to_owned()),
            (0u64..u64::MAX).prop_map(|n| format!("fire_all:{n}")),
            ".{0,16}",
        ],
        grace_ms in any::<u64>(),
    ) {
        let Ok(policy) = policy.parse::<MisfirePolicy>() else {
            return Ok(());
        };
        if let Ok(trigger) = Trigger::from_json(&json) {
            let plan = plan_catch_up(
                &trigger,
                last,
                now,
                policy,
                std::time::Duration::from_millis(grace_ms),
            );
            prop_assert!(plan.run.iter().all(|t| *t <= now));
            prop_assert!(plan.run.len() <= scheduler_core::misfire::MAX_CATCH_UP_RUNS);
            prop_assert!(plan.next.is_none_or(|t| t > now));
        }
    }
}

/// The generators reach the accepting paths too, not only the errors: a good share of what
/// they make parses.
#[test]
fn the_generators_make_valid_input_too() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let share = |ok: usize| ok * 100 / 2_000;
    let mut ok = (0, 0);
    for _ in 0..2_000 {
        let expr = cron_like()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        ok.0 += usize::from(CronExpr::parse(&expr).is_ok());
        let json = trigger_json()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        ok.1 += usize::from(Trigger::from_json(&json).is_ok());
    }
    assert!(share(ok.0) >= 5, "{}% of expressions parse", share(ok.0));
    assert!(share(ok.1) >= 2, "{}% of trigger JSON parses", share(ok.1));
}
