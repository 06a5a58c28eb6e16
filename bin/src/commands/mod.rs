//! One module per subcommand.

pub(crate) mod alerts;
pub(crate) mod bench;
pub(crate) mod check;
pub(crate) mod cluster;
pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod migrate;
pub(crate) mod next;
pub(crate) mod nodes;
mod output;
pub(crate) mod run;
pub(crate) mod runs;
pub(crate) mod shadow;
pub(crate) mod shadow_diff;
pub(crate) mod tasks;
pub(crate) mod token;
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
/// add`). Like [`open_db`], except on SQLite: a file that does not exist yet (a first try)
/// is created with the schema, and stderr says so; one that holds no tables but cronmesh's
/// (another command creating it at this moment) is waited for.
pub(crate) async fn open_db_to_add(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let name = settings.database.redacted_url();
    let Some(path) = settings.database.sqlite_path() else {
        return open_db(settings).await;
    };
    let new = !path.exists();
    let db = store::connect(&settings.database.url)
        .await
        .with_context(|| format!("opening database {name}"))?;
    let mut state = store::schema_state(&db).await?;
    let ours = new || store::holds_only_cronmesh_tables(&db).await?;
    if !new && ours {
        // Another command may be creating it this moment: give it a little time.
        for _ in 0..20 {
            if state == store::SchemaState::Current {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            state = store::schema_state(&db).await?;
        }
    }
    if state == store::SchemaState::Missing && ours {
        store::migrate(&db)
            .await
            .with_context(|| format!("creating the schema in database {name}"))?;
        if new {
            eprintln!("note: database {name} did not exist; created it with the cronmesh schema");
        }
    }
    store::require_current_schema(&db, &name).await?;
    Ok(db)
}

/// The next fire of a trigger just written, with a warning on stderr when there is none: a
/// `date` in the past or an `end_at` that has passed is accepted (a record of what ran), but
/// whoever wrote it most likely expected it to fire.
pub(crate) fn next_fire_or_warn(
    what: &str,
    trigger: &scheduler_core::Trigger,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let next = trigger.next_fire_after(chrono::Utc::now());
    if next.is_none() {
        let now = chrono::Utc::now();
        let why = match trigger {
            scheduler_core::Trigger::Date { .. } => "its date is in the past",
            scheduler_core::Trigger::Cron {
                end_at: Some(end), ..
            } if *end <= now => "its end_at has passed",
            scheduler_core::Trigger::Cron {
                end_at: Some(_), ..
            } => "its expression has no fire before its end_at",
            _ => "it has no fire after now",
        };
        eprintln!("warning: {what} will never fire: {why}");
    }
    next
}

/// An instant given on the command line (RFC 3339), or what is wrong with it.
pub(crate) fn instant(
    flag: &str,
    text: &str,
) -> Result<chrono::DateTime<chrono::Utc>, crate::cli::InvalidInput> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            crate::cli::InvalidInput(format!(
                "{flag} {}: not an RFC 3339 instant such as 2027-01-04T09:00:00Z or 2027-01-04T10:00:00+01:00 ({e})",
                scheduler_core::quoted(text)
            ))
        })
}

/// Who a CLI change is recorded as in the audit trail: `cli:<os user>`.
pub(crate) fn cli_actor() -> store::Who {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    store::Who::new(format!("cli:{user}"))
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
