//! The cron expression language and its matching on local wall-clock time.
//!
//! This module owns the grammar (5, 6 or 7 fields, `@` macros, names, Unix day-of-week
//! numbers, `L`, `DOW#n`, `DOWL`, the Vixie day-of-month / day-of-week rule) and the search
//! for the next matching *naive* local time. It knows nothing about time zones: mapping a
//! naive time to instants across DST is [`crate::schedule`]'s job.
//!
//! Fields compile to bit sets, so matching a time is a handful of bit operations and the
//! search for the next match jumps whole months and days instead of stepping seconds.

use std::fmt;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::error::{Error, Result};

/// Earliest year a year field may name and a search may reach.
pub const MIN_YEAR: i32 = 1970;
/// Latest year a year field may name; searches give up after it (so they are bounded).
pub const MAX_YEAR: i32 = 2199;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
// Index = Unix day-of-week number (0 = Sunday).
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron expression: what local wall-clock times it names.
#[derive(Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: std::sync::Arc<str>,
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bit `m` for month `m` (1-12).
    months: u16,
    days: DayRule,
    /// Bit `y - MIN_YEAR`; `None` = every year.
    years: Option<Box<[u64; 4]>>,
    hour_wildcard: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct DayRule {
    /// Bit `d` for day-of-month `d` (1-31).
    dom: u32,
    /// `L` in day-of-month: the last day of the month.
    dom_last: bool,
    dom_restricted: bool,
    /// Bit `w` for weekday `w` (0 = Sunday).
    dow: u8,
    /// `nth[w]` has bit `n` set for `w#n` (n in 1-5).
    nth: [u8; 7],
    /// Bit `w` for "last weekday `w` of the month" (`5L`, `FRIL`).
    dow_last: u8,
    dow_restricted: bool,
    /// Both day fields must match (APScheduler's rule), not either (Vixie cron's).
    match_all: bool,
}

impl CronExpr {
    /// Parses an expression. Errors name the field, the value and the allowed range.
    pub fn parse(expr: &str) -> Result<Self> {
        let trimmed = expr.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * SUN",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            other if other.starts_with('@') => {
                return Err(Error::cron(
                    expr,
                    format!(
                        "unknown macro {trimmed:?}; known: @yearly @annually @monthly @weekly @daily @midnight @hourly"
                    ),
                ));
            }
            _ => trimmed,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest, year) = match fields.len() {
            5 => ("0", &fields[..], None),
            6 => (fields[0], &fields[1..], None),
            7 => (fields[0], &fields[1..6], Some(fields[6])),
            n => {
                return Err(Error::cron(
                    expr,
                    format!(
                        "expected 5 fields (min hour dom month dow), 6 (with leading seconds) or 7 (with trailing year), found {n}"
                    ),
                ));
            }
        };
        let [min, hour, dom, month, dow] = [rest[0], rest[1], rest[2], rest[3], rest[4]];
        let err = |problem: String| Error::cron(expr, problem);

        let seconds = parse_plain(&SECOND, sec).map_err(err)?;
        let minutes = parse_plain(&MINUTE, min).map_err(err)?;
        let hours = parse_plain(&HOUR, hour).map_err(err)? as u32;
        let months = parse_plain(&MONTH, month).map_err(err)? as u16;
        let (dom_bits, dom_last) = parse_dom(dom).map_err(err)?;
        let (dow_bits, nth, dow_last) = parse_dow(dow).map_err(err)?;
        let years = match year {
            None => None,
            Some(y) if is_star(y) => None,
            Some(y) => Some(Box::new(parse_years(y).map_err(err)?)),
        };
        let parsed = CronExpr {
            source: trimmed.into(),
            seconds,
            minutes,
            hours,
            months,
            days: DayRule {
                dom: dom_bits,
                dom_last,
                dom_restricted: !is_star(dom),
                dow: dow_bits,
                nth,
                dow_last,
                dow_restricted: !is_star(dow),
                match_all: false,
            },
            years,
            hour_wildcard: hour == "*"
                || hour
                    .strip_prefix("*/")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        };
        let epoch = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t - Duration::seconds(1));
        if epoch.and_then(|e| parsed.next_after(e)).is_none() {
            return Err(Error::cron(
                expr,
                format!(
                    "can never fire: no date between {MIN_YEAR} and {MAX_YEAR} has day-of-month {dom:?}, month {month:?}, day-of-week {dow:?}{}",
                    year.map(|y| format!(" and year {y:?}")).unwrap_or_default()
                ),
            ));
        }
        Ok(parsed)
    }

    /// The same expression with both day fields required to match when both are restricted
    /// (APScheduler's rule; the trigger JSON's `"day_match": "all"`) instead of either (Vixie
    /// cron's, the default). Refused when no date then matches.
    pub fn with_all_days(mut self) -> Result<Self> {
        self.days.match_all = true;
        let epoch = NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t - Duration::seconds(1));
        if epoch.and_then(|e| self.next_after(e)).is_none() {
            return Err(Error::cron(
                &self.source,
                format!(
                    "can never fire: with day_match \"all\" no date between {MIN_YEAR} and {MAX_YEAR} has both its day-of-month and its day-of-week"
                ),
            ));
        }
        Ok(self)
    }

    /// Whether both day fields must match (see [`CronExpr::with_all_days`]).
    pub fn all_days(&self) -> bool {
        self.days.match_all
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the hour field is `*` or `*/n`: the schedule is interval-like and fires at
    /// every matching instant that exists (both passes of a repeated hour, none in a gap).
    pub fn is_hour_wildcard(&self) -> bool {
        self.hour_wildcard
    }

    /// Whether a naive local time matches every field (sub-second part ignored).
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.date_matches(t.date())
            && bit(self.hours as u64, t.hour())
            && bit(self.minutes, t.minute())
            && bit(self.seconds, t.second())
    }

    /// The first naive local time strictly after `after` that matches, or `None` when there
    /// is none before the end of [`MAX_YEAR`]. Cost is bounded by jumps over years, months and
    /// days, never by the number of seconds skipped.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_nanosecond(0)? + Duration::seconds(1);
        let mut date = start.date();
        let mut from = start.time();
        loop {
            let (year, month) = (date.year(), date.month());
            if year > MAX_YEAR {
                return None;
            }
            if !self.year_allowed(year) {
                date = NaiveDate::from_ymd_opt(self.next_year_from(year + 1)?, 1, 1)?;
                from = NaiveTime::MIN;
                continue;
            }
            if !bit(self.months as u64, month) {
                date = match next_bit(self.months as u64, month + 1) {
                    Some(m) => NaiveDate::from_ymd_opt(year, m, 1)?,
                    None => NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
                };
                from = NaiveTime::MIN;
                continue;
            }
            if self.days.matches(date)
                && let Some(time) = self.first_time_from(from)
            {
                return Some(date.and_time(time));
            }
            date = date.succ_opt()?;
            from = NaiveTime::MIN;
        }
    }

    fn date_matches(&self, d: NaiveDate) -> bool {
        self.year_allowed(d.year()) && bit(self.months as u64, d.month()) && self.days.matches(d)
    }

    fn year_allowed(&self, year: i32) -> bool {
        match &self.years {
            None => (MIN_YEAR..=MAX_YEAR).contains(&year),
            Some(set) => {
                (MIN_YEAR..=MAX_YEAR).contains(&year) && {
                    let i = (year - MIN_YEAR) as usize;
                    set[i / 64] & (1 << (i % 64)) != 0
                }
            }
        }
    }

    fn next_year_from(&self, year: i32) -> Option<i32> {
        (year.max(MIN_YEAR)..=MAX_YEAR).find(|&y| self.year_allowed(y))
    }

    /// The first time of day at or after `from` that the time fields allow.
    fn first_time_from(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        let mut h = next_bit(self.hours as u64, h0)?;
        loop {
            let m_from = if h == h0 { m0 } else { 0 };
            let mut m = next_bit(self.minutes, m_from);
            while let Some(minute) = m {
                let s_from = if h == h0 && minute == m0 { s0 } else { 0 };
                if let Some(s) = next_bit(self.seconds, s_from) {
                    return NaiveTime::from_hms_opt(h, minute, s);
                }
                m = next_bit(self.minutes, minute + 1);
            }
            h = next_bit(self.hours as u64, h + 1)?;
        }
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronExpr").field(&self.source).finish()
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl DayRule {
    fn matches(&self, d: NaiveDate) -> bool {
        let dom_ok =
            || bit(self.dom as u64, d.day()) || (self.dom_last && d.day() == days_in_month(d));
        let dow_ok = || {
            let w = d.weekday().num_days_from_sunday() as usize;
            let nth_of_month = (d.day() - 1) / 7 + 1;
            self.dow & (1 << w) != 0
                || self.nth[w] & (1 << nth_of_month) != 0
                || (self.dow_last & (1 << w) != 0 && d.day() + 7 > days_in_month(d))
        };
        // Vixie cron: when both fields are restricted a day matches if EITHER does (unless the
        // trigger asks for both).
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) if self.match_all => dom_ok() && dow_ok(),
            (true, true) => dom_ok() || dow_ok(),
            (true, false) => dom_ok(),
            (false, true) => dow_ok(),
            (false, false) => true,
        }
    }
}

fn days_in_month(d: NaiveDate) -> u32 {
    let (y, m) = (d.year(), d.month());
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
        .map_or(31, |last| last.day())
}

fn bit(set: u64, i: u32) -> bool {
    i < 64 && set & (1 << i) != 0
}

/// The lowest set bit at or above `from`.
fn next_bit(set: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = set >> from << from;
    (rest != 0).then(|| rest.trailing_zeros())
}

fn is_star(field: &str) -> bool {
    field == "*" || field == "?"
}

/// One field's name, range and symbolic names.
struct FieldKind {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of `names[0]`.
    names_start: u32,
}

const SECOND: FieldKind = FieldKind {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
const MINUTE: FieldKind = FieldKind {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
const HOUR: FieldKind = FieldKind {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
};
const DAY_OF_MONTH: FieldKind = FieldKind {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
};
const MONTH: FieldKind = FieldKind {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_start: 1,
};
// 7 is accepted as Sunday and folded to 0 after parsing.
const DAY_OF_WEEK: FieldKind = FieldKind {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &DAY_NAMES,
    names_start: 0,
};
const YEAR: FieldKind = FieldKind {
    name: "year",
    min: MIN_YEAR as u32,
    max: MAX_YEAR as u32,
    names: &[],
    names_start: 0,
};

impl FieldKind {
    fn value(&self, text: &str) -> Result<u32, String> {
        if text.is_empty() {
            return Err(format!("{} field has an empty value", self.name));
        }
        let v = if text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<u32>().map_err(|_| {
                format!(
                    "{} {text} is out of range {}-{}",
                    self.name, self.min, self.max
                )
            })?
        } else {
            let upper = text.to_ascii_uppercase();
            match self.names.iter().position(|n| *n == upper) {
                Some(i) => self.names_start + i as u32,
                None if self.names.is_empty() => {
                    return Err(format!("{} {text:?} is not a number", self.name));
                }
                None => {
                    return Err(format!(
                        "{} {text:?} is neither a number nor one of {}",
                        self.name,
                        self.names.join(" ")
                    ));
                }
            }
        };
        if v < self.min || v > self.max {
            return Err(format!(
                "{} {v} is out of range {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(v)
    }

    /// Parses one list item (`*`, `a`, `a-b`, with an optional `/step`) and calls `set` for
    /// each value it names.
    fn each_value(&self, item: &str, mut set: impl FnMut(u32)) -> Result<(), String> {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step = match s.parse::<u32>() {
                    Ok(step) => step,
                    Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                        return Err(format!(
                            "{} step {s} in {item:?} is out of range (at most {})",
                            self.name,
                            self.max - self.min + 1
                        ));
                    }
                    Err(_) => {
                        return Err(format!(
                            "{} step {s:?} in {item:?} is not a number",
                            self.name
                        ));
                    }
                };
                if step == 0 {
                    return Err(format!(
                        "{} step 0 in {item:?} would never advance",
                        self.name
                    ));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (self.min, self.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, mut hi) = (self.value(a)?, self.value(b)?);
            // `SAT-SUN`, `5-0`: Sunday as the end of a day-of-week range is day 7.
            if self.name == DAY_OF_WEEK.name && hi == 0 && lo > 0 {
                hi = 7;
            }
            if lo > hi {
                return Err(format!(
                    "{} range {range:?} runs backwards; write it as two items, e.g. {a}-{},{}-{b}",
                    self.name, self.max, self.min
                ));
            }
            (lo, hi)
        } else {
            let v = self.value(range)?;
            // `a/step` means from a to the end of the range.
            (v, if step.is_some() { self.max } else { v })
        };
        let step = step.unwrap_or(1) as usize;
        (lo..=hi).step_by(step).for_each(&mut set);
        Ok(())
    }
}

fn items<'a>(kind: &FieldKind, field: &'a str) -> Result<impl Iterator<Item = &'a str>, String> {
    if field.split(',').any(str::is_empty) {
        return Err(format!(
            "{} field {field:?} has an empty list item",
            kind.name
        ));
    }
    Ok(field.split(','))
}

fn parse_plain(kind: &FieldKind, field: &str) -> Result<u64, String> {
    if field == "?" {
        return Err(format!(
            "{} field cannot be \"?\": only day-of-month and day-of-week can",
            kind.name
        ));
    }
    let mut bits = 0u64;
    for item in items(kind, field)? {
        if item.eq_ignore_ascii_case("L") || item.contains('#') {
            return Err(format!(
                "{} field {field:?}: {item:?} is only allowed in day-of-month (L) or day-of-week (#, L)",
                kind.name
            ));
        }
        kind.each_value(item, |v| bits |= 1 << v)?;
    }
    Ok(bits)
}

fn parse_dom(field: &str) -> Result<(u32, bool), String> {
    if is_star(field) {
        return Ok((!1, false));
    }
    let mut bits = 0u32;
    let mut last = false;
    for item in items(&DAY_OF_MONTH, field)? {
        if item.eq_ignore_ascii_case("L") {
            last = true;
        } else if item.to_ascii_uppercase().contains(['L', 'W']) {
            return Err(format!(
                "day-of-month item {item:?} is not supported; use L for the last day of the month"
            ));
        } else {
            DAY_OF_MONTH.each_value(item, |v| bits |= 1 << v)?;
        }
    }
    Ok((bits, last))
}

fn parse_dow(field: &str) -> Result<(u8, [u8; 7], u8), String> {
    let fold = |v: u32| (v % 7) as usize; // 7 is Sunday, like 0
    if is_star(field) {
        return Ok((0x7f, [0; 7], 0));
    }
    let (mut bits, mut nth, mut last) = (0u8, [0u8; 7], 0u8);
    for item in items(&DAY_OF_WEEK, field)? {
        if let Some((day, n)) = item.split_once('#') {
            let w = fold(DAY_OF_WEEK.value(day)?);
            let n = match n.parse::<u32>() {
                Ok(n @ 1..=5) => n,
                _ => {
                    return Err(format!(
                        "day-of-week {item:?}: the number after # must be 1-5 (which occurrence in the month)"
                    ));
                }
            };
            nth[w] |= 1 << n;
        } else if item.len() > 1 && item.to_ascii_uppercase().ends_with('L') {
            let w = fold(DAY_OF_WEEK.value(&item[..item.len() - 1])?);
            last |= 1 << w;
        } else if item.eq_ignore_ascii_case("L") {
            return Err(
                "day-of-week \"L\" needs a day before it, e.g. FRIL or 5L for the last Friday"
                    .to_owned(),
            );
        } else {
            DAY_OF_WEEK.each_value(item, |v| bits |= 1 << fold(v))?;
        }
    }
    Ok((bits, nth, last))
}

fn parse_years(field: &str) -> Result<[u64; 4], String> {
    let mut set = [0u64; 4];
    for item in items(&YEAR, field)? {
        YEAR.each_value(item, |v| {
            let i = (v - MIN_YEAR as u32) as usize;
            set[i / 64] |= 1 << (i % 64);
        })?;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
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
}
