//! The orders module's scheduled tasks, declared next to the code they run.

use scheduler_actors::{TaskContext, TaskFailure, cron_task};
use scheduler_core::{MisfirePolicy, TaskDecl};

/// Marks unpaid orders older than a day as expired.
async fn expire_unpaid(ctx: TaskContext) -> Result<(), TaskFailure> {
    let _span = ctx.span().entered();
    tracing::info!(target: "cron_task", "expiring unpaid orders due before {}", ctx.fire_time);
    Ok(())
}

/// Sends the daily sales summary to the finance team.
async fn daily_summary(ctx: TaskContext) -> Result<(), TaskFailure> {
    let _span = ctx.span().entered();
    tracing::info!(target: "cron_task", "sending the sales summary for {}", ctx.fire_time.date_naive());
    Ok(())
}

cron_task!(
    TaskDecl::cron("orders.expire_unpaid", "0 */15 * * * *")
        .owner("orders-team")
        .description("Expire unpaid orders older than 24 h")
        .timeout_secs(300),
    expire_unpaid
);

cron_task!(
    TaskDecl::cron("orders.daily_summary", "0 30 7 * * MON-FRI")
        .timezone("Europe/Berlin")
        .owner("finance")
        .description("Daily sales summary by mail")
        .misfire(MisfirePolicy::FireOnce)
        .recover(true),
    daily_summary
);
