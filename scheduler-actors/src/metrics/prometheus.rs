//! The Prometheus text format of a node's metrics (`GET /metrics`).

use std::fmt::Write as _;

use super::{ActorSnapshot, MetricsSnapshot};

/// `# HELP` and `# TYPE` of one metric.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter's name ends in `_total`; every other plain value here is a gauge.
fn kind_of(name: &str) -> &'static str {
    if name.ends_with("_total") {
        "counter"
    } else {
        "gauge"
    }
}

/// Values per actor kind: (name, help, value).
type PerActor = (&'static str, &'static str, fn(&ActorSnapshot) -> i64);
const PER_ACTOR: [PerActor; 3] = [
    (
        "cronmesh_actor_mailbox_depth",
        "Messages waiting in an actor's mailbox.",
        |a| a.mailbox_depth as i64,
    ),
    (
        "cronmesh_actor_instances",
        "Running instances of an actor kind.",
        |a| a.instances,
    ),
    (
        "cronmesh_actor_restarts_total",
        "Restarts of a supervised actor.",
        |a| a.restarts as i64,
    ),
];

/// One value for the node: (name, help, value).
type PerNode = (&'static str, &'static str, fn(&MetricsSnapshot) -> i64);
const PERSISTENCE_AND_HEALTH: [PerNode; 8] = [
    (
        "cronmesh_claims_attempted_total",
        "Claims this node sent to the database, won or not.",
        |m| m.claims_attempted_total as i64,
    ),
    (
        "cronmesh_persistence_buffered",
        "Writes waiting for the database.",
        |m| m.persistence_buffered,
    ),
    (
        "cronmesh_persistence_buffer_bound",
        "The most writes that may wait for the database.",
        |m| m.persistence_buffer_bound,
    ),
    (
        "cronmesh_persistence_dropped_writes_total",
        "Writes given up because the buffer was full.",
        |m| m.persistence_dropped_writes as i64,
    ),
    ("cronmesh_degraded", "1 while a backend is down.", |m| {
        i64::from(m.degraded)
    }),
    (
        "cronmesh_schedule_behind_milliseconds",
        "How late the latest late scheduled fire started while the node is behind its schedule (0 while it keeps up).",
        |m| m.schedule_behind_ms as i64,
    ),
    (
        "cronmesh_schedule_behind_since_timestamp_seconds",
        "When the node fell behind its schedule, as a Unix time (0 while it keeps up).",
        |m| m.schedule_behind_since.map_or(0, |t| t.timestamp()),
    ),
    (
        "cronmesh_fires_shed_total",
        "Scheduled fires not run because they came up later than their misfire grace (recorded misfired).",
        |m| m.fires_shed_total as i64,
    ),
];

impl MetricsSnapshot {
    /// The Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        // Per actor kind and message type: put in the mailbox, and handled.
        let received = "cronmesh_actor_messages_received_total";
        let handled = "cronmesh_actor_messages_handled_total";
        let mailbox = [
            (received, "Messages put in an actor's mailbox."),
            (handled, "Messages an actor has handled."),
        ];
        for (name, help) in mailbox {
            header(&mut out, name, "counter", help);
            for a in &self.actors {
                for (m, s) in &a.messages {
                    let v = if name == received {
                        s.received
                    } else {
                        s.handled
                    };
                    let _ = writeln!(out, "{name}{{actor=\"{}\",message=\"{m}\"}} {v}", a.actor);
                }
            }
        }
        for (name, help, value) in PER_ACTOR {
            header(&mut out, name, kind_of(name), help);
            for a in &self.actors {
                let _ = writeln!(out, "{name}{{actor=\"{}\"}} {}", a.actor, value(a));
            }
        }
        let handling = "cronmesh_actor_handling_seconds";
        header(
            &mut out,
            handling,
            "histogram",
            "Time to handle one message.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                let labels = format!("actor=\"{}\",message=\"{m}\"", a.actor);
                s.handling_seconds
                    .write_prometheus(&mut out, handling, &labels);
            }
        }
        let fires = "cronmesh_fires_total";
        header(&mut out, fires, "counter", "Fires sent to executors.");
        let _ = writeln!(out, "{fires} {}", self.fires_total);
        let runs = "cronmesh_runs_total";
        header(&mut out, runs, "counter", "Run outcomes by status.");
        for (status, n) in &self.runs_total {
            let _ = writeln!(out, "{runs}{{status=\"{status}\"}} {n}");
        }
        let lateness = "cronmesh_fire_lateness_seconds";
        let help = "Handler start minus scheduled fire time.";
        header(&mut out, lateness, "histogram", help);
        self.fire_lateness_seconds
            .write_prometheus(&mut out, lateness, "");
        for (name, help, value) in PERSISTENCE_AND_HEALTH {
            header(&mut out, name, kind_of(name), help);
            let _ = writeln!(out, "{name} {}", value(self));
        }
        let alerts = "cronmesh_alerts_total";
        let help = "Alerts by outcome: sent, failed (every attempt), retried, dropped (queue full), suppressed (throttled), events_missed.";
        header(&mut out, alerts, "counter", help);
        for outcome in [
            "sent",
            "failed",
            "retried",
            "dropped",
            "suppressed",
            "events_missed",
        ] {
            let n = self.alerts_total.get(outcome).copied().unwrap_or(0);
            let _ = writeln!(out, "{alerts}{{outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}
