//! The Prometheus text format of a node's metrics (`GET /metrics`).

use std::fmt::Write as _;

use super::MetricsSnapshot;

impl MetricsSnapshot {
    /// The Prometheus text format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "cronmesh_actor_messages_received_total",
            "counter",
            "Messages put in an actor's mailbox.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                let _ = writeln!(
                    out,
                    "cronmesh_actor_messages_received_total{{actor=\"{}\",message=\"{m}\"}} {}",
                    a.actor, s.received
                );
            }
        }
        header(
            &mut out,
            "cronmesh_actor_messages_handled_total",
            "counter",
            "Messages an actor has handled.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                let _ = writeln!(
                    out,
                    "cronmesh_actor_messages_handled_total{{actor=\"{}\",message=\"{m}\"}} {}",
                    a.actor, s.handled
                );
            }
        }
        header(
            &mut out,
            "cronmesh_actor_mailbox_depth",
            "gauge",
            "Messages waiting in an actor's mailbox.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_mailbox_depth{{actor=\"{}\"}} {}",
                a.actor, a.mailbox_depth
            );
        }
        header(
            &mut out,
            "cronmesh_actor_instances",
            "gauge",
            "Running instances of an actor kind.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_instances{{actor=\"{}\"}} {}",
                a.actor, a.instances
            );
        }
        header(
            &mut out,
            "cronmesh_actor_restarts_total",
            "counter",
            "Restarts of a supervised actor.",
        );
        for a in &self.actors {
            let _ = writeln!(
                out,
                "cronmesh_actor_restarts_total{{actor=\"{}\"}} {}",
                a.actor, a.restarts
            );
        }
        header(
            &mut out,
            "cronmesh_actor_handling_seconds",
            "histogram",
            "Time to handle one message.",
        );
        for a in &self.actors {
            for (m, s) in &a.messages {
                s.handling_seconds.write_prometheus(
                    &mut out,
                    "cronmesh_actor_handling_seconds",
                    &format!("actor=\"{}\",message=\"{m}\"", a.actor),
                );
            }
        }
        header(
            &mut out,
            "cronmesh_fires_total",
            "counter",
            "Fires sent to executors.",
        );
        let _ = writeln!(out, "cronmesh_fires_total {}", self.fires_total);
        header(
            &mut out,
            "cronmesh_runs_total",
            "counter",
            "Run outcomes by status.",
        );
        for (status, n) in &self.runs_total {
            let _ = writeln!(out, "cronmesh_runs_total{{status=\"{status}\"}} {n}");
        }
        header(
            &mut out,
            "cronmesh_fire_lateness_seconds",
            "histogram",
            "Handler start minus scheduled fire time.",
        );
        self.fire_lateness_seconds
            .write_prometheus(&mut out, "cronmesh_fire_lateness_seconds", "");
        header(
            &mut out,
            "cronmesh_persistence_buffered",
            "gauge",
            "Writes waiting for the database.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_buffered {}",
            self.persistence_buffered
        );
        header(
            &mut out,
            "cronmesh_persistence_buffer_bound",
            "gauge",
            "The most writes that may wait for the database.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_buffer_bound {}",
            self.persistence_buffer_bound
        );
        header(
            &mut out,
            "cronmesh_persistence_dropped_writes_total",
            "counter",
            "Writes given up because the buffer was full.",
        );
        let _ = writeln!(
            out,
            "cronmesh_persistence_dropped_writes_total {}",
            self.persistence_dropped_writes
        );
        header(
            &mut out,
            "cronmesh_degraded",
            "gauge",
            "1 while a backend is down.",
        );
        let _ = writeln!(out, "cronmesh_degraded {}", i32::from(self.degraded));
        out
    }
}
