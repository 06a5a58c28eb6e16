//! A trigger in words, for people reading a list of tasks: "at 02:30 every day,
//! Europe/Berlin", "every 15 minutes between 09:00 and 17:59 on Monday to Friday, UTC",
//! "every 90 seconds". A shape it has no sentence for falls back to naming each field, so it
//! never says something the schedule does not do.

use chrono::{DateTime, Utc};

use crate::trigger::Trigger;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTH_ABBR: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const DAY_ABBR: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const ORDINALS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];

/// The trigger in words, ending with its zone.
pub fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Cron {
            schedule,
            start_at,
            end_at,
        } => {
            let mut words = describe_cron(schedule.expr().as_str());
            if schedule.expr().all_days() {
                // `"day_match": "all"`: the day must be both.
                words = words.replacen(", or on ", " if it falls on ", 1);
            }
            let mut text = format!("{words}, {}", schedule.zone().name());
            if let Some(start) = start_at {
                text.push_str(&format!(", from {}", utc_minute(*start)));
            }
            if let Some(end) = end_at {
                text.push_str(&format!(", until {}", utc_minute(*end)));
            }
            text
        }
        Trigger::Date { run_at } => format!("once, at {}", utc_minute(*run_at)),
        Trigger::Interval { every_secs, anchor } => {
            format!(
                "every {}, counted from {}",
                span(*every_secs),
                utc_minute(*anchor)
            )
        }
    }
}

fn utc_minute(t: DateTime<Utc>) -> String {
    if t.timestamp() % 60 == 0 {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

/// `90` -> "90 seconds", `900` -> "15 minutes", `7200` -> "2 hours", `86400` -> "1 day".
fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 && s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A cron expression (as written, macros included) in words, without its zone.
pub fn describe_cron(expr: &str) -> String {
    let text = expr.trim();
    let expanded = match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *".to_owned(),
        "@monthly" => "0 0 0 1 * *".to_owned(),
        "@weekly" => "0 0 0 * * SUN".to_owned(),
        "@daily" | "@midnight" => "0 0 0 * * *".to_owned(),
        "@hourly" => "0 0 * * * *".to_owned(),
        _ => text.to_owned(),
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let (sec, rest, year) = match fields.len() {
        5 => ("0", &fields[..], None),
        6 => (fields[0], &fields[1..], None),
        7 => (fields[0], &fields[1..6], Some(fields[6])),
        _ => return format!("cron {text}"),
    };
    let [min, hour, dom, month, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
    let mut parts = vec![time_part(sec, min, hour)];
    parts.push(day_part(dom, dow));
    if month != "*" && month != "?" {
        let named = match expand(month, 1, 12).filter(|_| month.contains('/')) {
            Some(months) => {
                let names: Vec<String> = months
                    .iter()
                    .map(|m| MONTHS[*m as usize - 1].to_owned())
                    .collect();
                join_and(&names)
            }
            None => list(month, &|v| month_name(v)),
        };
        parts.push(format!("in {named}"));
    }
    if let Some(year) = year.filter(|y| *y != "*" && *y != "?") {
        parts.push(format!("in {}", list(year, &|v| Some(v.to_owned()))));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// A plain number, if the field is one.
fn number(field: &str) -> Option<u32> {
    field.parse().ok()
}

/// Every value a numeric field (seconds, minutes, hours, days of the month) names, in
/// `min..=max`: lists, ranges, `*`, and steps (`*/n`, `a/n` = from a to the end, `a-b/n`).
/// `None` for anything else (names, `L`, `#`), which then gets no sentence of its own.
fn expand(field: &str, min: u32, max: u32) -> Option<Vec<u32>> {
    let mut out = std::collections::BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, number(step).filter(|s| *s > 0)?),
            None => (item, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if item.contains('/') => (number(r)?, max),
                None => (number(r)?, number(r)?),
            },
        };
        if from < min || to > max || from > to {
            return None;
        }
        out.extend((from..=to).step_by(step as usize));
    }
    Some(out.into_iter().collect())
}

/// `n` when `values` are exactly `0, n, 2n, ...` up to `max` and `n` divides `max + 1` (so the
/// gap is the same across the wrap to the next minute, hour or day).
fn even_step(values: &[u32], max: u32) -> Option<u32> {
    let step = *values.get(1)?;
    ((max + 1).is_multiple_of(step)
        && values.first() == Some(&0)
        && values
            .iter()
            .enumerate()
            .all(|(i, v)| *v == i as u32 * step)
        && values.len() as u32 == (max + 1) / step)
        .then_some(step)
}

fn numbers(values: &[u32], width: usize) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:0width$}")).collect();
    join_and(&items)
}

fn time_part(sec: &str, min: &str, hour: &str) -> String {
    let (Some(secs), Some(mins), Some(hours)) =
        (expand(sec, 0, 59), expand(min, 0, 59), expand(hour, 0, 23))
    else {
        return format!("at second {sec}, minute {min}, hour {hour}");
    };
    // One or a few fixed times a day.
    if let ([s], [m]) = (secs.as_slice(), mins.as_slice())
        && hours.len() <= 6
    {
        let times: Vec<String> = hours
            .iter()
            .map(|h| {
                if *s == 0 {
                    format!("{h:02}:{m:02}")
                } else {
                    format!("{h:02}:{m:02}:{s:02}")
                }
            })
            .collect();
        return format!("at {}", join_and(&times));
    }
    let all_secs = secs.len() == 60;
    let all_mins = mins.len() == 60;
    let mut text = if secs == [0] {
        // Whole minutes.
        if all_mins {
            "every minute".to_owned()
        } else if let Some(step) = even_step(&mins, 59) {
            format!("every {step} minutes")
        } else if let [m] = mins.as_slice() {
            format!("at minute {m}")
        } else {
            format!("at minutes {}", numbers(&mins, 0))
        }
    } else {
        let seconds = if all_secs {
            "every second".to_owned()
        } else if let Some(step) = even_step(&secs, 59) {
            format!("every {step} seconds")
        } else if let [s] = secs.as_slice() {
            format!("at second {s}")
        } else {
            format!("at seconds {}", numbers(&secs, 0))
        };
        if all_mins {
            if seconds.starts_with("at") {
                format!("{seconds} of every minute")
            } else {
                seconds
            }
        } else if let [m] = mins.as_slice() {
            format!("{seconds} of minute {m}")
        } else {
            format!("{seconds} of minutes {}", numbers(&mins, 0))
        }
    };
    let in_minutes = text.starts_with("at minute") || text.contains(" of minute");
    if hours.len() == 24 {
        if in_minutes {
            text.push_str(" of every hour");
        }
    } else if let (Some(first), Some(last)) = (hours.first(), hours.last())
        && (last - first) as usize + 1 == hours.len()
    {
        text.push_str(&format!(" between {first:02}:00 and {last:02}:59"));
    } else {
        text.push_str(&format!(" in hours {}", numbers(&hours, 2)));
    }
    text
}

fn day_part(dom: &str, dow: &str) -> String {
    let any = |f: &str| f == "*" || f == "?";
    match (any(dom), any(dow)) {
        (true, true) => "every day".to_owned(),
        (false, true) => days_of_month(dom),
        (true, false) => weekdays(dow),
        // The Vixie rule: either one matches.
        (false, false) => format!("{}, or {}", days_of_month(dom), weekdays(dow)),
    }
}

fn days_of_month(dom: &str) -> String {
    if dom.eq_ignore_ascii_case("L") {
        return "on the last day of the month".to_owned();
    }
    if let Some(days) = expand(dom, 1, 31).filter(|_| dom.contains('/')) {
        return format!("on days {} of the month", numbers(&days, 0));
    }
    format!(
        "on day {} of the month",
        list(dom, &|v| if v.eq_ignore_ascii_case("L") {
            Some("last".to_owned())
        } else {
            Some(v.to_owned())
        })
    )
}

fn weekdays(dow: &str) -> String {
    let items: Vec<String> = dow
        .split(',')
        .map(|item| {
            if let Some((day, n)) = item.split_once('#')
                && let (Some(day), Some(n)) = (day_name(day), number(n))
                && (1..=5).contains(&n)
            {
                return format!("the {} {day} of the month", ORDINALS[n as usize - 1]);
            }
            if let Some(day) = item
                .strip_suffix('L')
                .or_else(|| item.strip_suffix('l'))
                .and_then(day_name)
            {
                return format!("the last {day} of the month");
            }
            if let Some((a, b)) = item.split_once('-')
                && let (Some(from), Some(to)) = (day_name(a), day_name(b))
            {
                // `0-7` and `SUN-7`: Sunday round to Sunday, every day.
                if from == to && !a.eq_ignore_ascii_case(b) {
                    return "every day of the week".to_owned();
                }
                return format!("{from} to {to}");
            }
            day_name(item).unwrap_or_else(|| format!("weekday {item}"))
        })
        .collect();
    format!("on {}", join_and(&items))
}

fn day_name(v: &str) -> Option<String> {
    if let Some(i) = DAY_ABBR.iter().position(|d| d.eq_ignore_ascii_case(v)) {
        return Some(DAYS[i].to_owned());
    }
    // Unix numbering: 0 and 7 are Sunday.
    number(v)
        .filter(|n| *n <= 7)
        .map(|n| DAYS[(n % 7) as usize].to_owned())
}

fn month_name(v: &str) -> Option<String> {
    if let Some(i) = MONTH_ABBR.iter().position(|m| m.eq_ignore_ascii_case(v)) {
        return Some(MONTHS[i].to_owned());
    }
    number(v)
        .filter(|n| (1..=12).contains(n))
        .map(|n| MONTHS[n as usize - 1].to_owned())
}

/// A comma list with ranges, each value named by `name` (as written when it has no name).
fn list(field: &str, name: &dyn Fn(&str) -> Option<String>) -> String {
    let named = |v: &str| name(v).unwrap_or_else(|| v.to_owned());
    let items: Vec<String> = field
        .split(',')
        .map(|item| match item.split_once('-') {
            Some((a, b)) if !b.contains('/') => format!("{} to {}", named(a), named(b)),
            _ => named(item),
        })
        .collect();
    join_and(&items)
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expr: &str, zone: &str) -> String {
        describe(&Trigger::cron(expr, zone).expect("valid"))
    }

    #[test]
    fn common_schedules_read_as_people_say_them() {
        assert_eq!(
            cron("30 2 * * *", "Europe/Berlin"),
            "at 02:30 every day, Europe/Berlin"
        );
        assert_eq!(
            cron("30 9 * * MON-FRI", "Asia/Shanghai"),
            "at 09:30 on Monday to Friday, Asia/Shanghai"
        );
        assert_eq!(
            cron("*/15 9-17 * * 1-5", "UTC"),
            "every 15 minutes between 09:00 and 17:59 on Monday to Friday, UTC"
        );
        assert_eq!(
            cron("0 18 * * 5L", "UTC"),
            "at 18:00 on the last Friday of the month, UTC"
        );
        assert_eq!(
            cron("0 8 * * MON#1", "UTC"),
            "at 08:00 on the first Monday of the month, UTC"
        );
        assert_eq!(
            cron("0 0 L * *", "UTC"),
            "at 00:00 on the last day of the month, UTC"
        );
        assert_eq!(
            cron("@hourly", "UTC"),
            "at minute 0 of every hour every day, UTC"
        );
        assert_eq!(cron("* * * * *", "UTC"), "every minute every day, UTC");
        assert_eq!(
            cron("*/10 * * * * *", "UTC"),
            "every 10 seconds every day, UTC"
        );
        assert_eq!(
            cron("0 6,18 1 JAN,JUL *", "UTC"),
            "at 06:00 and 18:00 on day 1 of the month in January and July, UTC"
        );
        assert_eq!(
            cron("0 12 1,15 * MON", "UTC"),
            "at 12:00 on day 1 and 15 of the month, or on Monday, UTC"
        );
        // Shapes that are easy to say wrongly: each says exactly the times it fires.
        for (expr, words) in [
            ("5 * * * *", "at minute 5 of every hour every day"),
            ("30 * * * * *", "at second 30 of every minute every day"),
            (
                "30 0 * * * *",
                "at second 30 of minute 0 of every hour every day",
            ),
            (
                "5/15 * * * *",
                "at minutes 5, 20, 35 and 50 of every hour every day",
            ),
            (
                "* */2 * * *",
                "every minute in hours 00, 02, 04, 06, 08, 10, 12, 14, 16, 18, 20 and 22 every day",
            ),
            (
                "*/7 * * * *",
                "at minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56 of every hour every day",
            ),
            (
                "5,10/20 * * * *",
                "at minutes 5, 10, 30 and 50 of every hour every day",
            ),
            ("0 */6 * * *", "at 00:00, 06:00, 12:00 and 18:00 every day"),
            (
                "0 0 */10 * *",
                "at 00:00 on days 1, 11, 21 and 31 of the month",
            ),
            (
                "0 0 1 */4 *",
                "at 00:00 on day 1 of the month in January, May and September",
            ),
            ("0 9 * * 0-7", "at 09:00 on every day of the week"),
            ("0 0 9 * * * ?", "at 09:00 every day"),
        ] {
            assert_eq!(cron(expr, "UTC"), format!("{words}, UTC"), "{expr}");
        }
        // Both day fields at once: Friday the 13th, and nothing else.
        let friday13 = Trigger::from_json(
            r#"{"type":"cron","expr":"0 0 13 * FRI","timezone":"UTC","day_match":"all"}"#,
        )
        .expect("valid");
        assert_eq!(
            describe(&friday13),
            "at 00:00 on day 13 of the month if it falls on Friday, UTC"
        );
        let after = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("instant")
            .with_timezone(&Utc);
        let fires: Vec<String> = friday13
            .fires_between(after, DateTime::<Utc>::MAX_UTC)
            .take(3)
            .map(crate::rfc3339)
            .collect();
        assert_eq!(
            fires,
            [
                "2026-02-13T00:00:00Z",
                "2026-03-13T00:00:00Z",
                "2026-11-13T00:00:00Z"
            ]
        );
        assert!(friday13.to_json().contains(r#""day_match":"all""#));
        assert!(
            !Trigger::cron("0 0 13 * FRI", "UTC")
                .expect("valid")
                .to_json()
                .contains("day_match")
        );
        assert!(
            Trigger::from_json(r#"{"type":"cron","expr":"0 0 1 * *","day_match":"sometimes"}"#)
                .is_err()
        );
        let every = Trigger::Interval {
            every_secs: 90,
            anchor: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(
            describe(&every),
            "every 90 seconds, counted from 1970-01-01 00:00 UTC"
        );
        let once = Trigger::Date {
            run_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(describe(&once), "once, at 1970-01-01 00:00 UTC");
    }
}
