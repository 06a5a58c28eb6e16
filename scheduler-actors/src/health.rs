//! What a node knows about its own health and acts on: whether its database writes succeed.
//! The persistence actor reports each write; the scheduler (dead-node reaping) and the
//! executors (leave fires to peers while writes fail) ask. Metrics report; this decides.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Since-when value while writes fail.
const FAILING: i64 = i64::MIN;

/// Shared by a node's actors.
#[derive(Debug)]
pub struct Health {
    /// Since when (UTC epoch ms) database writes have been succeeding; [`FAILING`] while
    /// they fail.
    database_ok_since_ms: AtomicI64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            database_ok_since_ms: AtomicI64::new(now_ms()),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Health {
    /// Records whether the last database write succeeded.
    pub fn database_ok(&self, ok: bool) {
        self.database_ok_at(ok, now_ms());
    }

    /// How long database writes have been succeeding without a failure (zero while failing).
    pub fn database_ok_for(&self) -> Duration {
        self.database_ok_for_at(now_ms())
    }

    fn database_ok_at(&self, ok: bool, now_ms: i64) {
        if !ok {
            self.database_ok_since_ms.store(FAILING, Ordering::Relaxed);
        } else if self.database_ok_since_ms.load(Ordering::Relaxed) == FAILING {
            self.database_ok_since_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    fn database_ok_for_at(&self, now_ms: i64) -> Duration {
        match self.database_ok_since_ms.load(Ordering::Relaxed) {
            FAILING => Duration::ZERO,
            since => Duration::from_millis((now_ms - since).max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_time_counts_from_the_first_success_after_a_failure() {
        let health = Health::default();
        health.database_ok_at(true, 1_000);
        let start = health.database_ok_for_at(0);
        health.database_ok_at(false, 1_000);
        assert_eq!(health.database_ok_for_at(5_000), Duration::ZERO, "failing");
        health.database_ok_at(true, 6_000);
        health.database_ok_at(true, 7_000);
        assert_eq!(
            health.database_ok_for_at(9_000),
            Duration::from_secs(3),
            "counted from the first success, not the latest"
        );
        assert_eq!(start, Duration::ZERO);
    }
}
