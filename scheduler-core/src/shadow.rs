//! Shadow mode: a task that computes, claims and records its fires without running its
//! handler, so its schedule can be compared with the scheduler it replaces before it takes
//! over; and the cut-over instant from which it runs for real.

use chrono::{DateTime, Utc};

/// Whether a task's fires run their handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shadow {
    /// The task runs for real.
    #[default]
    Off,
    /// Every fire is recorded as `shadow`; the handler never runs.
    On,
    /// Cut over: fires before this instant are `shadow`, fires from it on run for real.
    Until(DateTime<Utc>),
}

impl Shadow {
    /// From the stored pair (`shadow`, `cutover_at`).
    pub fn from_columns(shadow: bool, cutover_at: Option<DateTime<Utc>>) -> Self {
        match (shadow, cutover_at) {
            (false, _) => Shadow::Off,
            (true, None) => Shadow::On,
            (true, Some(at)) => Shadow::Until(at),
        }
    }

    /// The stored pair (`shadow`, `cutover_at`).
    pub fn columns(self) -> (bool, Option<DateTime<Utc>>) {
        match self {
            Shadow::Off => (false, None),
            Shadow::On => (true, None),
            Shadow::Until(at) => (true, Some(at)),
        }
    }

    /// Whether the task is in shadow mode at all (cut over or not).
    pub fn is_set(self) -> bool {
        self != Shadow::Off
    }

    /// Whether the fire at `fire` is a shadow fire by the task's own setting.
    pub fn covers(self, fire: DateTime<Utc>) -> bool {
        match self {
            Shadow::Off => false,
            Shadow::On => true,
            Shadow::Until(at) => fire < at,
        }
    }

    /// Whether the fire at `fire` is a shadow fire on a node that runs every task in shadow
    /// mode (`run --shadow`) when `node_shadow` is set: a task's cut-over wins over the node's
    /// setting, so cutting a task over never needs a node restarted.
    pub fn covers_on_node(self, fire: DateTime<Utc>, node_shadow: bool) -> bool {
        match self {
            Shadow::Until(at) => fire < at,
            _ => node_shadow || self.covers(fire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a test instant")
    }

    #[test]
    fn a_cut_over_task_is_shadow_before_its_instant_and_real_from_it_on() {
        let cut = Shadow::Until(at("2027-01-01T10:00:00Z"));
        assert!(cut.covers(at("2027-01-01T09:59:59Z")));
        assert!(!cut.covers(at("2027-01-01T10:00:00Z")));
        assert!(!cut.covers(at("2027-01-01T10:00:01Z")));
        assert!(Shadow::On.covers(at("2099-01-01T00:00:00Z")));
        assert!(!Shadow::Off.covers(at("2000-01-01T00:00:00Z")));
    }

    #[test]
    fn a_shadow_node_shadows_every_task_except_from_a_cut_over_on() {
        let t = at("2027-01-01T10:00:00Z");
        assert!(Shadow::Off.covers_on_node(t, true));
        assert!(!Shadow::Off.covers_on_node(t, false));
        assert!(!Shadow::Until(t).covers_on_node(t, true));
        assert!(Shadow::Until(t).covers_on_node(at("2027-01-01T09:00:00Z"), true));
    }

    #[test]
    fn the_stored_pair_round_trips() {
        for s in [
            Shadow::Off,
            Shadow::On,
            Shadow::Until(at("2027-01-01T10:00:00Z")),
        ] {
            let (shadow, cutover) = s.columns();
            assert_eq!(Shadow::from_columns(shadow, cutover), s);
        }
        // A cut-over instant left on a task taken out of shadow mode means nothing.
        assert_eq!(
            Shadow::from_columns(false, Some(at("2027-01-01T10:00:00Z"))),
            Shadow::Off
        );
    }
}
