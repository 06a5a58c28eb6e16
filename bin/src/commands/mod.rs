//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod inspect;
pub(crate) mod migrate;
pub(crate) mod next;
pub(crate) mod nodes;
mod output;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod tasks;
pub(crate) mod triggers;

use anyhow::Context;
use scheduler_actors::store::{self, StoreError};
use sea_orm::DatabaseConnection;

use crate::cli::InvalidInput;
use crate::settings::Settings;

/// Connects to the configured database and brings its schema up to date, so the operator
/// commands work on a fresh machine too.
pub(crate) async fn open_db(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let name = settings.database.redacted_url();
    let db = store::connect(&settings.database.url)
        .await
        .with_context(|| format!("connecting to database {name}"))?;
    store::migrate(&db)
        .await
        .with_context(|| format!("migrating database {name}"))?;
    Ok(db)
}

/// Refusals (unknown task, invalid spec, conf in use) are bad input; database failures are not.
pub(crate) fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Db(_) => anyhow::Error::new(e),
        other => anyhow::Error::new(InvalidInput(other.to_string())),
    }
}

/// Tells running nodes a change was written, when the cluster has Redis. Best effort: the
/// nodes' reconcile picks the change up within a second anyway.
pub(crate) async fn notify_nodes(settings: &Settings, what: &str) {
    if let Some(url) = &settings.redis_url
        && let Err(e) =
            scheduler_actors::notices::publish_change(url, &settings.redis_prefix, what).await
    {
        eprintln!(
            "note: could not notify nodes over Redis ({e}); they will see the change within a second"
        );
    }
}
