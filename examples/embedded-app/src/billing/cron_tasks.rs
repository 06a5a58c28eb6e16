//! Billing's scheduled jobs, declared next to their code.

use scheduler_actors::{MisfirePolicy, TaskContext, TaskDecl, TaskFailure, cron_task};

use super::Ledger;

/// The ledger the node was given, or a failure that says it was not.
fn ledger(ctx: &TaskContext) -> Result<std::sync::Arc<Ledger>, TaskFailure> {
    ctx.data::<Ledger>()
        .ok_or_else(|| TaskFailure::new("no Ledger given to the node (NodeBuilder::app_data)"))
}

/// Books the invoices due at this fire.
async fn invoice(ctx: TaskContext) -> Result<(), TaskFailure> {
    let ledger = ledger(&ctx)?;
    ledger
        .record(&format!("invoice {}", ctx.fire_time.to_rfc3339()))
        .map_err(|e| TaskFailure::new(format!("writing the ledger: {e}")))?;
    ctx.span()
        .in_scope(|| tracing::info!(target: "cron_task", "invoices booked"));
    Ok(())
}

/// Fetches exchange rates; fails while no source is configured.
async fn sync_rates(ctx: TaskContext) -> Result<(), TaskFailure> {
    let ledger = ledger(&ctx)?;
    let source = ledger
        .rates_source
        .as_deref()
        .ok_or_else(|| TaskFailure::new("no exchange-rate source configured"))?;
    ledger
        .record(&format!("rates from {source}"))
        .map_err(|e| TaskFailure::new(format!("writing the ledger: {e}")))
}

cron_task!(
    TaskDecl::cron("billing.invoice", "* * * * * *")
        .owner("billing")
        .description("Book the invoices due")
        .misfire(MisfirePolicy::Skip),
    invoice
);

cron_task!(
    TaskDecl::cron("billing.sync_rates", "*/2 * * * * *")
        .owner("billing")
        .description("Fetch exchange rates")
        .misfire(MisfirePolicy::Skip),
    sync_rates
);
