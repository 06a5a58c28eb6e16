//! `cronmesh triggers ...`: shared trigger confs. Changing one reschedules every task that
//! uses it; one in use cannot be removed.

use std::process::ExitCode;

use clap::Subcommand;
use scheduler_core::Trigger;

use super::output::table;
use super::{open_db, open_db_to_add, store_error};
use crate::settings::Settings;

/// `triggers` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TriggersCommand {
    /// List shared trigger confs.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Add a shared trigger conf.
    Add {
        /// Name.
        name: String,
        /// Trigger JSON.
        json: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change a shared trigger conf (reschedules its tasks).
    Set {
        /// Name.
        name: String,
        /// Trigger JSON.
        json: String,
    },
    /// Remove a shared trigger conf that no task uses.
    Remove {
        /// Name.
        name: String,
    },
}

pub(crate) async fn run(settings: &Settings, cmd: TriggersCommand) -> anyhow::Result<ExitCode> {
    let db = match &cmd {
        TriggersCommand::Add { .. } => open_db_to_add(settings).await?,
        _ => open_db(settings).await?,
    };
    let changed = !matches!(cmd, TriggersCommand::List { .. });
    match cmd {
        TriggersCommand::List { json } => {
            let confs = store::list_trigger_confs(&db).await?;
            if json {
                let list: Vec<serde_json::Value> = confs
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "name": c.name,
                            "trigger": serde_json::from_str::<serde_json::Value>(&c.trigger_json).ok(),
                            "description": c.description,
                            "version": c.version,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table(["NAME", "TRIGGER", "DESCRIPTION"]);
            for c in &confs {
                let trigger = Trigger::from_json(&c.trigger_json)
                    .map_or_else(|e| format!("invalid: {e}"), |t| t.to_string());
                t.add_row([c.name.clone(), trigger, c.description.clone()]);
            }
            println!("{t}");
        }
        TriggersCommand::Add {
            name,
            json,
            description,
        } => {
            store::add_trigger_conf(&db, &name, &json, &description, &super::cli_actor())
                .await
                .map_err(store_error)?;
            warn_if_never_fires(&name, &json);
            println!("added trigger conf {name}");
        }
        TriggersCommand::Set { name, json } => {
            let n = store::set_trigger_conf(&db, &name, &json, &super::cli_actor())
                .await
                .map_err(store_error)?;
            warn_if_never_fires(&name, &json);
            println!("changed trigger conf {name}; {n} task(s) rescheduled");
        }
        TriggersCommand::Remove { name } => {
            store::remove_trigger_conf(&db, &name, &super::cli_actor())
                .await
                .map_err(store_error)?;
            println!("removed trigger conf {name}");
        }
    }
    if changed {
        super::notify_nodes(settings, "triggers").await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Warns when a conf just written (and so valid) will never fire.
fn warn_if_never_fires(name: &str, json: &str) {
    if let Ok(trigger) = scheduler_core::Trigger::from_json(json) {
        super::next_fire_or_warn(&format!("trigger conf {name}"), &trigger);
    }
}
