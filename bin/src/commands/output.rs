//! Small helpers the listing commands share: tables and time formatting.

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets::NOTHING};

/// A borderless table with a header.
pub(crate) fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(header);
    t
}

/// An instant for a table cell, `-` when absent.
pub(crate) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), scheduler_core::rfc3339)
}

/// At most `max` characters of `s` on one line.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
