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

mod fields;
#[cfg(test)]
mod tests;

use self::fields::{
    HOUR, MINUTE, MONTH, SECOND, is_star, parse_dom, parse_dow, parse_plain, parse_years,
};

/// Earliest year a year field may name and a search may reach.
pub const MIN_YEAR: i32 = 1970;
/// Latest year a year field may name; searches give up after it (so they are bounded).
pub const MAX_YEAR: i32 = 2199;

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
