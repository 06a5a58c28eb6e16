//! SeaORM entities of cronmesh, one module per table (docs/architecture.md, "Data").
//!
//! Column meanings are documented on each `Model`. The schema itself is created by the
//! `migration` crate; these types must follow it, never the other way round.

pub mod alert_delivery;
pub mod audit_event;
pub mod cluster_state;
pub mod console_session;
pub mod prelude;
pub mod scheduled_task;
pub mod scheduler_node;
pub mod task_run;
pub mod trigger_conf;
