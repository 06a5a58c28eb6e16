//! The tasks every node has: run-record pruning, the dead-man check of alerts
//! (`cronmesh.alert_silence`, in `alerts/dispatch.rs`), and the demo heartbeat where enabled.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{MisfirePolicy, TaskDecl};
use sea_orm::DatabaseConnection;

use super::{CodeTasks, TaskContext, TaskFailure, TaskHandler};

/// `cronmesh.prune_runs` (daily: deletes finished runs older than `retention`; declared
/// disabled when `retention` is zero, so run records are kept for ever) and, with `demo`,
/// `demo.heartbeat` (every 10 s).
pub(crate) fn maintenance_tasks(
    db: &DatabaseConnection,
    retention: Duration,
    demo: bool,
    alerter: Arc<std::sync::OnceLock<Arc<crate::alerts::Alerter>>>,
    alert_routes: bool,
) -> CodeTasks {
    let prune_db = db.clone();
    let prune: Arc<dyn TaskHandler> = Arc::new(move |ctx: TaskContext| {
        let db = prune_db.clone();
        async move {
            if retention.is_zero() {
                // Retention 0 keeps records for ever: a run of this task (run now, or an
                // operator's `enable`) deletes nothing.
                ctx.span().in_scope(|| {
                    tracing::info!(target: "cron_task", "runs.retention_days = 0: run records are kept, nothing pruned");
                });
                return Ok(());
            }
            let before = ctx.fire_time
                - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            let deleted = store::prune_runs(&db, before)
                .await
                .map_err(|e| TaskFailure::new(e.to_string()))?;
            ctx.span().in_scope(|| {
                tracing::info!(target: "cron_task", deleted, "pruned run records older than {}", scheduler_core::rfc3339(before));
            });
            Ok::<(), TaskFailure>(())
        }
    });
    let mut prune_decl = TaskDecl::cron("cronmesh.prune_runs", "17 3 * * *")
        .owner("cronmesh")
        .description("Deletes finished run records older than runs.retention_days (0: off)")
        .misfire(MisfirePolicy::FireOnce)
        .origin("built-in");
    prune_decl.enabled = !retention.is_zero();
    let mut tasks = crate::alerts::silence_check_task(
        CodeTasks::new().with_handler(prune_decl, "cronmesh::prune_runs", prune),
        alerter,
        alert_routes,
    );
    if demo {
        let demo: Arc<dyn TaskHandler> = Arc::new(|ctx: TaskContext| async move {
            ctx.span().in_scope(|| {
                tracing::info!(target: "cron_task", "demo heartbeat: the scheduler is running");
            });
            Ok::<(), TaskFailure>(())
        });
        tasks = tasks.with_handler(
            TaskDecl::cron("demo.heartbeat", "*/10 * * * * *")
                .owner("cronmesh")
                .description("Shows the scheduler working; turn off with demo.enabled = false")
                .misfire(MisfirePolicy::Skip)
                .origin("built-in"),
            "cronmesh::demo_heartbeat",
            demo,
        );
    }
    tasks
}
