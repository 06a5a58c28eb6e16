//! The entities under short names.

pub use super::alert_delivery::Entity as AlertDelivery;
pub use super::audit_event::Entity as AuditEvent;
pub use super::cluster_state::Entity as ClusterState;
pub use super::console_session::Entity as ConsoleSession;
pub use super::scheduled_task::Entity as ScheduledTask;
pub use super::scheduler_node::Entity as SchedulerNode;
pub use super::task_run::Entity as TaskRun;
pub use super::trigger_conf::Entity as TriggerConf;
