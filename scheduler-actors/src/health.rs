//! What a node knows about its own health and acts on: whether its database writes succeed.
//! The persistence actor reports each write; the scheduler (dead-node reaping) and the
//! executors (leave fires to peers while writes fail) ask. Metrics report; this decides.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Shared by a node's actors.
#[derive(Debug)]
pub struct Health {
    /// Since when (UTC epoch ms) database writes have been succeeding; 0 while they fail.
    database_ok_since_ms: AtomicI64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            database_ok_since_ms: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
        }
    }
}

impl Health {
    /// Records whether the last database write succeeded.
    pub fn database_ok(&self, ok: bool) {
        if !ok {
            self.database_ok_since_ms.store(0, Ordering::Relaxed);
        } else if self.database_ok_since_ms.load(Ordering::Relaxed) == 0 {
            self.database_ok_since_ms
                .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    /// How long database writes have been succeeding without a failure (zero while failing).
    pub fn database_ok_for(&self) -> Duration {
        match self.database_ok_since_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => {
                Duration::from_millis((chrono::Utc::now().timestamp_millis() - since).max(0) as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_resets_the_healthy_time() {
        let health = Health::default();
        health.database_ok(true);
        health.database_ok(false);
        assert_eq!(health.database_ok_for(), Duration::ZERO);
        health.database_ok(true);
        health.database_ok(true);
        assert!(health.database_ok_for() < Duration::from_secs(5));
    }
}
