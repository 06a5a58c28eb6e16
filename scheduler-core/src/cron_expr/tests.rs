//! The cron language at fixed local times.

use super::*;

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test time")
}

fn nexts(expr: &str, after: &str, n: usize) -> Vec<String> {
    let e = CronExpr::parse(expr).expect("valid expression");
    let mut t = at(after);
    (0..n)
        .map(|_| {
            t = e.next_after(t).expect("a next fire");
            t.format("%Y-%m-%d %H:%M:%S %a").to_string()
        })
        .collect()
}

fn parse_err(expr: &str) -> String {
    CronExpr::parse(expr)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn five_six_and_seven_fields() {
    assert_eq!(
        nexts("30 9 * * *", "2026-01-01 00:00:00", 1),
        ["2026-01-01 09:30:00 Thu"]
    );
    assert_eq!(
        nexts("15 30 9 * * *", "2026-01-01 00:00:00", 1),
        ["2026-01-01 09:30:15 Thu"]
    );
    assert_eq!(
        nexts("0 0 12 1 1 * 2028", "2026-01-01 00:00:00", 1),
        ["2028-01-01 12:00:00 Sat"]
    );
    assert!(parse_err("* * * *").contains("expected 5 fields"));
}

#[test]
fn macros() {
    assert_eq!(
        nexts("@yearly", "2026-03-01 00:00:00", 1),
        ["2027-01-01 00:00:00 Fri"]
    );
    assert_eq!(
        nexts("@monthly", "2026-03-01 00:00:00", 1),
        ["2026-04-01 00:00:00 Wed"]
    );
    assert_eq!(
        nexts("@weekly", "2026-03-01 00:00:00", 1),
        ["2026-03-08 00:00:00 Sun"]
    );
    assert_eq!(
        nexts("@daily", "2026-03-01 00:00:00", 1),
        ["2026-03-02 00:00:00 Mon"]
    );
    assert_eq!(
        nexts("@midnight", "2026-03-01 00:00:00", 1),
        ["2026-03-02 00:00:00 Mon"]
    );
    assert_eq!(
        nexts("@hourly", "2026-03-01 00:00:00", 1),
        ["2026-03-01 01:00:00 Sun"]
    );
    assert!(
        CronExpr::parse("@hourly")
            .expect("hourly")
            .is_hour_wildcard()
    );
    assert!(parse_err("@reboot").contains("unknown macro"));
    assert!(
        CronExpr::parse("0 */6 * * *")
            .expect("valid")
            .is_hour_wildcard()
    );
    assert!(
        !CronExpr::parse("0 */6,3 * * *")
            .expect("valid")
            .is_hour_wildcard()
    );
}

#[test]
fn names_are_case_insensitive() {
    let upper = nexts("0 0 1 JAN,JUL MON-FRI", "2026-01-02 00:00:00", 3);
    assert_eq!(
        upper,
        nexts("0 0 1 jan,Jul mon-fRi", "2026-01-02 00:00:00", 3)
    );
    assert_eq!(upper[0], "2026-01-05 00:00:00 Mon");
    assert_eq!(
        nexts("0 0 * fEb sUn", "2026-01-01 00:00:00", 1),
        ["2026-02-01 00:00:00 Sun"]
    );
}

#[test]
fn sunday_is_zero_and_seven_and_one_to_five_is_monday_to_friday() {
    let sundays = ["2026-03-01 00:00:00 Sun", "2026-03-08 00:00:00 Sun"];
    assert_eq!(nexts("0 0 * * 0", "2026-02-28 12:00:00", 2), sundays);
    assert_eq!(nexts("0 0 * * 7", "2026-02-28 12:00:00", 2), sundays);
    assert_eq!(nexts("0 0 * * SUN", "2026-02-28 12:00:00", 2), sundays);
    let week = nexts("0 0 * * 1-5", "2026-02-28 12:00:00", 5);
    assert_eq!(
        week,
        [
            "2026-03-02 00:00:00 Mon",
            "2026-03-03 00:00:00 Tue",
            "2026-03-04 00:00:00 Wed",
            "2026-03-05 00:00:00 Thu",
            "2026-03-06 00:00:00 Fri"
        ]
    );
    assert_eq!(
        nexts("0 0 * * 5-7", "2026-03-02 00:00:00", 3)[2],
        "2026-03-08 00:00:00 Sun"
    );
}

#[test]
fn day_of_week_ranges_may_end_on_sunday() {
    let weekend = ["2026-03-07 00:00:00 Sat", "2026-03-08 00:00:00 Sun"];
    assert_eq!(nexts("0 0 * * SAT-SUN", "2026-03-06 12:00:00", 2), weekend);
    assert_eq!(nexts("0 0 * * 6-0", "2026-03-06 12:00:00", 2), weekend);
    assert_eq!(
        nexts("0 0 * * MON-SUN", "2026-03-06 12:00:00", 2)[1],
        weekend[1]
    );
}

#[test]
fn thirty_first_fires_only_in_long_months() {
    let fires = nexts("0 0 31 * *", "2026-01-01 00:00:00", 7);
    assert_eq!(
        fires,
        [
            "2026-01-31 00:00:00 Sat",
            "2026-03-31 00:00:00 Tue",
            "2026-05-31 00:00:00 Sun",
            "2026-07-31 00:00:00 Fri",
            "2026-08-31 00:00:00 Mon",
            "2026-10-31 00:00:00 Sat",
            "2026-12-31 00:00:00 Thu"
        ]
    );
}

#[test]
fn february_29() {
    assert_eq!(
        nexts("0 0 29 2 *", "2026-03-01 00:00:00", 2),
        ["2028-02-29 00:00:00 Tue", "2032-02-29 00:00:00 Sun"]
    );
    // A base time on Feb 29 itself.
    assert_eq!(
        nexts("0 0 29 2 *", "2028-02-29 00:00:00", 1),
        ["2032-02-29 00:00:00 Sun"]
    );
    assert_eq!(
        nexts("0 12 * * *", "2028-02-29 13:00:00", 1),
        ["2028-03-01 12:00:00 Wed"]
    );
    // 2100 is not a leap year.
    assert_eq!(
        nexts("0 0 29 2 *", "2096-03-01 00:00:00", 1),
        ["2104-02-29 00:00:00 Fri"]
    );
}

#[test]
fn last_day_of_month() {
    assert_eq!(
        nexts("0 0 L 2 *", "2027-01-01 00:00:00", 2),
        ["2027-02-28 00:00:00 Sun", "2028-02-29 00:00:00 Tue"]
    );
    assert_eq!(
        nexts("0 0 L * *", "2026-04-01 00:00:00", 2),
        ["2026-04-30 00:00:00 Thu", "2026-05-31 00:00:00 Sun"]
    );
}

#[test]
fn nth_and_last_weekday() {
    // Second Friday: 2026-03-13, 2026-04-10.
    assert_eq!(
        nexts("0 0 * * FRI#2", "2026-03-01 00:00:00", 2),
        ["2026-03-13 00:00:00 Fri", "2026-04-10 00:00:00 Fri"]
    );
    // Last Friday, both spellings: 2026-03-27, 2026-04-24.
    for e in ["0 0 * * 5L", "0 0 * * FRIL", "0 0 * * friL"] {
        assert_eq!(
            nexts(e, "2026-03-01 00:00:00", 2),
            ["2026-03-27 00:00:00 Fri", "2026-04-24 00:00:00 Fri"]
        );
    }
    assert!(parse_err("0 0 * * FRI#6").contains("must be 1-5"));
}

#[test]
fn vixie_rule_ors_restricted_day_fields() {
    // 2026-02-13 is a Friday; every 13th and every Friday.
    assert_eq!(
        nexts("0 0 13 * FRI", "2026-02-01 00:00:00", 6),
        [
            "2026-02-06 00:00:00 Fri",
            "2026-02-13 00:00:00 Fri",
            "2026-02-20 00:00:00 Fri",
            "2026-02-27 00:00:00 Fri",
            "2026-03-06 00:00:00 Fri",
            "2026-03-13 00:00:00 Fri"
        ]
    );
    assert_eq!(
        nexts("0 0 13 * FRI", "2026-04-01 00:00:00", 2),
        ["2026-04-03 00:00:00 Fri", "2026-04-10 00:00:00 Fri"]
    );
    assert_eq!(
        nexts("0 0 13 * FRI", "2026-04-10 00:00:00", 1),
        ["2026-04-13 00:00:00 Mon"]
    );
    // With one field unrestricted, the other alone decides.
    assert_eq!(
        nexts("0 0 13 * ?", "2026-04-01 00:00:00", 1),
        ["2026-04-13 00:00:00 Mon"]
    );
}

#[test]
fn ranges_lists_and_steps() {
    assert_eq!(
        nexts("*/20 * * * * *", "2026-01-01 00:00:30", 2),
        ["2026-01-01 00:00:40 Thu", "2026-01-01 00:01:00 Thu"]
    );
    assert_eq!(
        nexts("5/20 * * * *", "2026-01-01 00:00:00", 3),
        [
            "2026-01-01 00:05:00 Thu",
            "2026-01-01 00:25:00 Thu",
            "2026-01-01 00:45:00 Thu"
        ]
    );
    assert_eq!(
        nexts("0 10-14/2,20 * * *", "2026-01-01 11:00:00", 3),
        [
            "2026-01-01 12:00:00 Thu",
            "2026-01-01 14:00:00 Thu",
            "2026-01-01 20:00:00 Thu"
        ]
    );
}

#[test]
fn errors_name_field_and_value() {
    assert!(parse_err("0 0 32 * *").contains("day-of-month 32 is out of range 1-31"));
    assert!(parse_err("60 * * * *").contains("minute 60 is out of range 0-59"));
    assert!(parse_err("0 24 * * *").contains("hour 24 is out of range 0-23"));
    assert!(parse_err("0 0 * 13 *").contains("month 13 is out of range 1-12"));
    assert!(parse_err("0 0 * * 8").contains("day-of-week 8 is out of range 0-7"));
    assert!(parse_err("0 0 * FOO *").contains("month \"FOO\" is neither a number nor one of"));
    assert!(parse_err("*/0 * * * *").contains("step 0"));
    assert!(parse_err("0 0 5-2 * *").contains("runs backwards"));
    assert!(parse_err("0 0 1,,2 * *").contains("empty list item"));
    assert!(parse_err("0 ? * * *").contains("cannot be \"?\""));
    assert!(parse_err("0 0 * * * * 1969").contains("year 1969 is out of range"));
    assert!(parse_err("0 0 15W * *").contains("not supported"));
    assert!(parse_err("*/99999999999 * * * *").contains("out of range"));
}

#[test]
fn impossible_expressions_are_rejected_at_parse_time() {
    for e in [
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 0 29 2 * 2100",
        "0 0 31 2 ?",
    ] {
        assert!(parse_err(e).contains("can never fire"), "{e}");
    }
    let err = parse_err("0 0 31 4,6,9,11 *");
    assert!(
        err.contains("day-of-month \"31\", month \"4,6,9,11\""),
        "{err}"
    );
    // Possible but rare: accepted.
    assert!(CronExpr::parse("0 0 29 2 *").is_ok());
    assert!(
        CronExpr::parse("0 0 30 2 MON").is_ok(),
        "Vixie OR makes it fire on Mondays"
    );
}

#[test]
fn next_is_strictly_after_and_increasing() {
    let e = CronExpr::parse("*/7 */3 * * * *").expect("valid");
    let mut t = at("2026-06-01 00:00:00");
    for _ in 0..10_000 {
        let n = e.next_after(t).expect("next");
        assert!(n > t);
        assert!(e.matches(n));
        t = n;
    }
    // Sub-second base: the same second is not "after".
    let base = at("2026-06-01 00:00:00") + Duration::milliseconds(500);
    let every_second = CronExpr::parse("* * * * * *").expect("valid");
    assert_eq!(
        every_second.next_after(base),
        Some(at("2026-06-01 00:00:01"))
    );
}

/// The `cron` crate is the reference for the part of the language where its semantics and
/// ours coincide (named weekdays, at most one restricted day field, no `L`/`#`).
#[test]
fn agrees_with_the_cron_crate_where_semantics_coincide() {
    use std::str::FromStr;
    for expr in [
        "0 */7 * * * *",
        "15 30 9 * * MON-FRI",
        "0 0 0 1,15 * *",
        "0 0 12 * JAN,JUL SUN",
        "*/20 5-10 3 * * *",
        "0 0 0 29 2 *",
        "0 0 6 * * SAT 2027-2029",
    ] {
        let ours = CronExpr::parse(expr).expect("ours parses");
        let reference = cron::Schedule::from_str(expr).expect("cron crate parses");
        let mut t = at("2026-01-01 00:00:00");
        let mut theirs = reference.after(&t.and_utc());
        for _ in 0..300 {
            let Some(expected) = theirs.next() else { break };
            let got = ours.next_after(t).expect("ours has a next");
            assert_eq!(got, expected.naive_utc(), "{expr} after {t}");
            t = got;
        }
    }
}

#[test]
fn search_ends_after_max_year() {
    let e = CronExpr::parse("0 0 0 1 1 * 2030").expect("valid");
    assert_eq!(e.next_after(at("2030-01-01 00:00:00")), None);
    let daily = CronExpr::parse("@daily").expect("valid");
    assert_eq!(daily.next_after(at("2199-12-31 00:00:00")), None);
}
