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
use sea_orm::DatabaseConnection;
use store::StoreError;

use crate::settings::Settings;

/// Opens the configured database for a command that works on an existing cronmesh database:
/// nothing is created or migrated. A database that does not exist, has no cronmesh schema,
/// or has another version's schema is refused (exit 1) with what to do.
pub(crate) async fn open_db(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let name = settings.database.redacted_url();
    let db = match store::connect_existing(&settings.database.url).await {
        Ok(db) => db,
        // It names the database itself.
        Err(e @ StoreError::NoSchema { .. }) => return Err(e.into()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("connecting to database {name}")));
        }
    };
    store::require_current_schema(&db, &name).await?;
    Ok(db)
}

/// Opens the configured database for a command that adds something (`tasks add`, `triggers
/// add`). Like [`open_db`], except that a SQLite database that does not exist yet (the
/// embedded default on a first try) is created with the schema, and stderr says so.
pub(crate) async fn open_db_to_add(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let name = settings.database.redacted_url();
    if settings
        .database
        .sqlite_path()
        .is_none_or(|path| path.exists())
    {
        return open_db(settings).await;
    }
    let db = store::connect(&settings.database.url)
        .await
        .with_context(|| format!("creating database {name}"))?;
    store::migrate(&db)
        .await
        .with_context(|| format!("creating the schema in database {name}"))?;
    eprintln!("note: database {name} did not exist; created it with the cronmesh schema");
    Ok(db)
}

/// Refusals, unknown names and conflicts of a request the user made are bad input (exit 2);
/// database failures are not.
pub(crate) fn store_error(e: StoreError) -> anyhow::Error {
    crate::error::user_request(e)
}

/// Tells running nodes a change was written, when the cluster has Redis. Best effort: the
/// nodes' reconcile picks the change up within a second anyway.
pub(crate) async fn notify_nodes(settings: &Settings, what: &str) {
    if let Some(url) = &settings.redis_url
        && let Err(e) =
            scheduler_actors::change_notices::publish_change(url, &settings.redis_prefix, what)
                .await
    {
        eprintln!(
            "note: could not notify nodes over Redis ({e}); they will see the change within a second"
        );
    }
}
