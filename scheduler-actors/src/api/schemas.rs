//! The shapes of the API's answers, for the OpenAPI document. The handlers build their JSON
//! from the store's rows; a test holds each answer to its shape here (same keys), and the
//! schema fuzzing checks every answer's types against them.
#![allow(dead_code)] // Read by utoipa's derives only.

use utoipa::ToSchema;

/// A task.
#[derive(ToSchema)]
pub(super) struct Task {
    name: String,
    module: String,
    handler: String,
    /// The handler's arguments, secrets shown as `***`.
    #[schema(value_type = Option<Object>)]
    handler_args: Option<serde_json::Value>,
    trigger_conf: Option<String>,
    /// The inline trigger JSON (absent with a trigger conf).
    #[schema(value_type = Option<Object>)]
    trigger: Option<serde_json::Value>,
    enabled: bool,
    owner: String,
    description: String,
    timeout_ms: Option<i64>,
    misfire: String,
    misfire_grace_ms: i64,
    overlap: String,
    recover: bool,
    lock_ttl_ms: i64,
    /// `code`, `runtime`.
    source: String,
    builtin: bool,
    orphaned: bool,
    schedule_overridden: bool,
    /// Alert routes the task names besides the configured matches.
    alert_routes: Vec<String>,
    /// The dead-man check: a `silent` alert after this long without a success.
    alert_if_no_success_for_secs: Option<i64>,
    /// Shadow mode: fires are recorded as `shadow` runs and the handler does not run.
    shadow: bool,
    /// With `shadow`: the cut-over instant, from which the task's fires run for real.
    cutover_at: Option<String>,
    next_run_at: Option<String>,
    last_run_at: Option<String>,
    last_status: Option<String>,
    version: i64,
}

/// The cluster pause.
#[derive(ToSchema)]
pub(super) struct Cluster {
    paused: bool,
    reason: Option<String>,
    changed_at: String,
    changed_by: String,
}

/// A page of tasks.
#[derive(ToSchema)]
pub(super) struct TaskPage {
    items: Vec<Task>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
    cluster: Cluster,
}

/// A run requested with run now.
#[derive(ToSchema)]
pub(super) struct RunRequested {
    task: String,
    fire_time: String,
}

/// A shared trigger conf and the tasks using it.
#[derive(ToSchema)]
pub(super) struct Conf {
    name: String,
    #[schema(value_type = Option<Object>)]
    trigger: Option<serde_json::Value>,
    description: String,
    version: i64,
    used_by: Vec<String>,
}

/// Every trigger conf.
#[derive(ToSchema)]
pub(super) struct ConfList {
    items: Vec<Conf>,
    cluster: Cluster,
}

/// A run of a task.
#[derive(ToSchema)]
pub(super) struct Run {
    run_id: String,
    task: String,
    fire_time: Option<String>,
    attempt: i32,
    /// `running`, `succeeded`, `failed`, `timed_out`, `panicked`, `lock_lost`, `interrupted`,
    /// `abandoned`, `skipped_overlap`, `misfired` or `shadow` (recorded in shadow mode; the
    /// handler did not run).
    status: String,
    node: String,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    error: Option<String>,
    /// The last KiB of its output.
    output_tail: Option<String>,
    /// How many fires the row stands for: 1, or for a `misfired` row written for a run of
    /// fires given up together (a node behind its schedule, the catch-up after downtime), how
    /// many; `fire_time` is the last of them.
    fires: i32,
}

/// A page of runs, newest first.
#[derive(ToSchema)]
pub(super) struct RunPage {
    items: Vec<Run>,
    next_cursor: Option<String>,
    cluster: Cluster,
}

/// A node of the cluster.
#[derive(ToSchema)]
pub(super) struct Node {
    node_id: String,
    host: String,
    pid: i64,
    version: String,
    admin_url: Option<String>,
    /// `running`, `draining`, `stopped`, `dead`.
    state: String,
    started_at: String,
    last_heartbeat: String,
    heartbeat_age_ms: i64,
}

/// Every node.
#[derive(ToSchema)]
pub(super) struct NodeList {
    items: Vec<Node>,
    cluster: Cluster,
}

/// One change in the audit trail.
#[derive(ToSchema)]
pub(super) struct AuditEvent {
    id: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
    reason: Option<String>,
}

/// A page of the audit trail, newest first.
#[derive(ToSchema)]
pub(super) struct AuditPage {
    items: Vec<AuditEvent>,
    next_cursor: Option<i64>,
    cluster: Cluster,
}

/// One fire of a preview.
#[derive(ToSchema)]
pub(super) struct PreviewFire {
    utc: String,
    local: String,
    note: Option<String>,
}

/// The next fires of a trigger.
#[derive(ToSchema)]
pub(super) struct Preview {
    #[schema(value_type = Option<Object>)]
    trigger: Option<serde_json::Value>,
    fires: Vec<PreviewFire>,
}

/// An alert sent, or given up on.
#[derive(ToSchema)]
pub(super) struct Delivery {
    id: i64,
    /// The route's name.
    route: String,
    /// `failed`, `timed_out`, `panicked`, `lock_lost`, `abandoned`, `misfired`,
    /// `interrupted`, `recovered`, `silent` or `test`.
    event: String,
    task: String,
    run_id: Option<String>,
    fire_time: Option<String>,
    /// The node that sent it.
    node: String,
    /// `sent`, or `failed` (every attempt failed, or the receiver refused it for good).
    state: String,
    attempts: i32,
    http_status: Option<i32>,
    error: Option<String>,
    /// Alerts of the same route and task the throttle held back before this one.
    suppressed: i64,
    created_at: String,
    finished_at: Option<String>,
}

/// A page of alert deliveries, newest first.
#[derive(ToSchema)]
pub(super) struct DeliveryPage {
    items: Vec<Delivery>,
    next_cursor: Option<i64>,
    cluster: Cluster,
}
