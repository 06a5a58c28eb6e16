//! What the bench measures besides the handlers' own notes: the window, the process's memory
//! and CPU, percentiles, and the commands the Redis server ran.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Resident memory (current, peak) in bytes, from /proc.
pub(super) fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) used by this process so far.
pub(super) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The measured seconds: whole seconds, starting after a warm-up second.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct Window {
    pub(super) start_ms: i64,
    pub(super) end_ms: i64,
}

impl Window {
    pub(super) fn after(now: DateTime<Utc>, duration: u32) -> Self {
        let start_ms = (now.timestamp() + 2) * 1000;
        Window {
            start_ms,
            end_ms: start_ms + i64::from(duration) * 1000,
        }
    }

    pub(super) fn until(at_ms: i64) -> Duration {
        Duration::from_millis((at_ms - Utc::now().timestamp_millis()).max(0) as u64)
    }
}

/// Commands the Redis server ran during the window, once it is over (`None` without Redis, or
/// when it could not be asked).
pub(super) type RedisCalls = std::thread::JoinHandle<Option<u64>>;

/// Counts the commands the Redis at `url` runs during `window` (`INFO commandstats` at its
/// start and end, every client's commands: the nodes' locks, renewals, releases, notices).
pub(super) fn redis_calls_in(url: Option<String>, window: Window) -> RedisCalls {
    std::thread::spawn(move || {
        let client = redis::Client::open(url?.as_str()).ok()?;
        let mut conn = client.get_connection().ok()?;
        let mut calls = || -> Option<u64> {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut conn)
                .ok()?;
            Some(
                info.lines()
                    .filter_map(|l| l.split("calls=").nth(1))
                    .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
                    .sum(),
            )
        };
        std::thread::sleep(Window::until(window.start_ms));
        let start = calls()?;
        std::thread::sleep(Window::until(window.end_ms));
        Some(calls()?.saturating_sub(start))
    })
}
