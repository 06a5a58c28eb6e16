//! `cronmesh tasks shadow` and `cronmesh tasks cutover`: the hand-over from another scheduler.
//! A task in shadow mode computes, claims and records its fires as `shadow` rows without
//! running its handler, so its schedule can be compared with the old scheduler's
//! (`cronmesh shadow-diff`); a cut-over makes its fires from an instant on run for real.

use sea_orm::DatabaseConnection;

use super::{cli_actor, store_error};
use crate::cli::InvalidInput;

/// Which tasks: one by name, or every task of a module.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Selection {
    /// Task name.
    name: Option<String>,
    /// Every task of this module.
    #[arg(long)]
    module: Option<String>,
}

impl Selection {
    /// The names selected; a module without tasks is bad input.
    async fn names(&self, db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
        match (&self.name, &self.module) {
            (Some(name), _) => Ok(vec![name.clone()]),
            (None, Some(module)) => {
                let names = store::task_names_in_module(db, module).await?;
                if names.is_empty() {
                    return Err(InvalidInput(format!(
                        "--module {}: no task is in that module",
                        scheduler_core::quoted(module)
                    ))
                    .into());
                }
                Ok(names)
            }
            (None, None) => unreachable!("clap requires a name or --module"),
        }
    }
}

/// `tasks shadow`: puts the tasks in shadow mode, or (`off`) makes them run for real.
pub(crate) async fn set_mode(
    db: &DatabaseConnection,
    which: &Selection,
    on: bool,
) -> anyhow::Result<()> {
    let names = which.names(db).await?;
    store::set_shadow(db, &names, on, &cli_actor())
        .await
        .map_err(store_error)?;
    for name in &names {
        if on {
            println!(
                "task {name} is in shadow mode: its fires are recorded as `shadow`, its handler does not run"
            );
        } else {
            println!("task {name} runs for real");
        }
    }
    Ok(())
}

/// `tasks cutover`: from the fire at `at` on, the tasks run for real.
pub(crate) async fn cut_over(
    db: &DatabaseConnection,
    which: &Selection,
    at: &str,
) -> anyhow::Result<()> {
    let at = super::instant("--at", at)?;
    let names = which.names(db).await?;
    store::cut_over(db, &names, at, &cli_actor())
        .await
        .map_err(store_error)?;
    for name in &names {
        println!(
            "task {name}: fires before {at} stay shadow; from the fire at {at} on it runs for real",
            at = scheduler_core::rfc3339(at)
        );
    }
    println!(
        "stop the old scheduler's jobs after their last fire before {} and before that instant",
        scheduler_core::rfc3339(at)
    );
    Ok(())
}
