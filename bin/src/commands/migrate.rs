//! `cronmesh migrate`: bring the configured database's schema up to date.

use std::process::ExitCode;

use anyhow::Context;

use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let url = &settings.database.url;
    let db = store::connect(url).await.with_context(|| {
        format!(
            "connecting to database {}",
            settings.database.redacted_url()
        )
    })?;
    let was_current = store::schema_is_current(&db).await?;
    store::migrate(&db).await.context("applying migrations")?;
    if was_current {
        println!(
            "schema already up to date ({})",
            settings.database.redacted_url()
        );
    } else {
        println!("schema migrated ({})", settings.database.redacted_url());
    }
    Ok(ExitCode::SUCCESS)
}
