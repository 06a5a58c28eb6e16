//! `cronmesh check`: the registry as a node would load it, and everything wrong with it.

use std::process::ExitCode;

use chrono::Utc;
use comfy_table::{Table, presets::NOTHING};
use scheduler_actors::CodeTasks;
use scheduler_core::{Registry, rfc3339};

use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, tasks: &CodeTasks) -> anyhow::Result<ExitCode> {
    let confs = match shared_trigger_confs(settings).await {
        Ok(confs) => confs,
        Err(note) => {
            eprintln!("note: {note}; tasks that use a shared trigger conf will be reported");
            Vec::new()
        }
    };
    let registry = Registry::build(tasks.decls().to_vec(), confs);
    let now = Utc::now();

    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header([
        "NAME",
        "MODULE",
        "OWNER",
        "ENABLED",
        "TRIGGER",
        "NEXT FIRE (UTC)",
    ]);
    for t in registry.tasks() {
        let next = t
            .trigger
            .next_fire_after(now)
            .map_or_else(|| "-".to_owned(), rfc3339);
        table.add_row([
            t.name.clone(),
            t.module.clone(),
            t.owner.clone(),
            t.enabled.to_string(),
            t.trigger.to_string(),
            next,
        ]);
    }
    let count = registry.tasks().count();
    if count == 0 {
        println!("no valid tasks registered");
    } else {
        println!("{table}");
        println!("{count} task(s)");
    }
    if registry.is_clean() {
        return Ok(ExitCode::SUCCESS);
    }
    println!("\n{} problem(s):", registry.problems().len());
    for p in registry.problems() {
        println!("  - {p}");
    }
    Ok(ExitCode::FAILURE)
}

/// The database's shared trigger confs, without creating or migrating anything: `check` only
/// reads. `Err` explains why they could not be read.
async fn shared_trigger_confs(settings: &Settings) -> Result<Vec<(String, String)>, String> {
    let db_name = settings.database.redacted_url();
    if let Some(path) = settings.database.sqlite_path()
        && !path.exists()
    {
        return Err(format!("database {db_name} does not exist yet"));
    }
    // `check` must not create, convert or migrate anything.
    let db = store::connect_existing(&settings.database.url)
        .await
        .map_err(|e| format!("database {db_name} is unreachable ({e})"))?;
    match store::require_current_schema(&db, &db_name).await {
        Ok(()) => {}
        Err(store::StoreError::NoSchema { .. } | store::StoreError::SchemaBehind { .. }) => {
            return Err(format!("database {db_name} needs `cronmesh migrate`"));
        }
        // A newer schema, or the database failing: its own words say what to do.
        Err(e) => return Err(format!("database {db_name}: {e}")),
    }
    store::trigger_confs(&db)
        .await
        .map_err(|e| format!("reading trigger confs from {db_name}: {e}"))
}
