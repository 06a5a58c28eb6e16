//! The fields of an expression: each field's range and names, and parsing a field's text into
//! the bit set `CronExpr` matches with. Errors name the field, the value and the range.

use super::{MAX_YEAR, MIN_YEAR};

pub(super) const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
// Index = Unix day-of-week number (0 = Sunday).
pub(super) const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

pub(super) fn is_star(field: &str) -> bool {
    field == "*" || field == "?"
}

/// One field's name, range and symbolic names.
pub(super) struct FieldKind {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of `names[0]`.
    names_start: u32,
}

pub(super) const SECOND: FieldKind = FieldKind {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
pub(super) const MINUTE: FieldKind = FieldKind {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
pub(super) const HOUR: FieldKind = FieldKind {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
};
pub(super) const DAY_OF_MONTH: FieldKind = FieldKind {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
};
pub(super) const MONTH: FieldKind = FieldKind {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    names_start: 1,
};
// 7 is accepted as Sunday and folded to 0 after parsing.
pub(super) const DAY_OF_WEEK: FieldKind = FieldKind {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &DAY_NAMES,
    names_start: 0,
};
pub(super) const YEAR: FieldKind = FieldKind {
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

pub(super) fn items<'a>(
    kind: &FieldKind,
    field: &'a str,
) -> Result<impl Iterator<Item = &'a str>, String> {
    if field.split(',').any(str::is_empty) {
        return Err(format!(
            "{} field {field:?} has an empty list item",
            kind.name
        ));
    }
    Ok(field.split(','))
}

pub(super) fn parse_plain(kind: &FieldKind, field: &str) -> Result<u64, String> {
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

pub(super) fn parse_dom(field: &str) -> Result<(u32, bool), String> {
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

pub(super) fn parse_dow(field: &str) -> Result<(u8, [u8; 7], u8), String> {
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

pub(super) fn parse_years(field: &str) -> Result<[u64; 4], String> {
    let mut set = [0u64; 4];
    for item in items(&YEAR, field)? {
        YEAR.each_value(item, |v| {
            let i = (v - MIN_YEAR as u32) as usize;
            set[i / 64] |= 1 << (i % 64);
        })?;
    }
    Ok(set)
}
