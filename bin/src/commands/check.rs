//! `cronmesh check`: the registry as a node would load it, and everything wrong with it.

use std::process::ExitCode;

use chrono::Utc;
use comfy_table::{Table, presets::NOTHING};
use scheduler_actors::CodeTasks;
use scheduler_core::{Registry, rfc3339};

use crate::settings::Settings;

pub(crate) async fn run(settings: &Settings, tasks: &CodeTasks) -> anyhow::Result<ExitCode> {
    let (confs, stored_code_tasks) = match from_database(settings).await {
        Ok(found) => found,
        Err(note) => {
            eprintln!("note: {note}; tasks that use a shared trigger conf will be reported");
            (Vec::new(), Vec::new())
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
    if tasks.decls().is_empty() && !stored_code_tasks.is_empty() {
        // The linker keeps a library's `cron_task!` registrations only when the binary uses
        // the library; nothing else says they are missing.
        println!(
            "no code tasks are registered in this binary, but the database holds {} from a binary that had them ({}{}).\n\
             If this binary should run them and they are declared in a library crate, the linker dropped them because the binary uses nothing from that library: add `use the_library as _;` to its main.rs.",
            stored_code_tasks.len(),
            stored_code_tasks
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if stored_code_tasks.len() > 5 {
                ", ..."
            } else {
                ""
            }
        );
        return Ok(ExitCode::FAILURE);
    }
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

/// The database's shared trigger confs and the names of its code tasks, without creating or
/// migrating anything: `check` only reads. `Err` explains why they could not be read.
async fn from_database(
    settings: &Settings,
) -> Result<(Vec<(String, String)>, Vec<String>), String> {
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
    let confs = store::trigger_confs(&db)
        .await
        .map_err(|e| format!("reading trigger confs from {db_name}: {e}"))?;
    let code = store::code_task_names(&db)
        .await
        .map_err(|e| format!("reading tasks from {db_name}: {e}"))?;
    Ok((confs, code))
}
