//! `cronmesh import`: tasks from another scheduler. Each source (`crontab.rs`,
//! `apscheduler.rs`) turns its input into wanted tasks (or reasons it cannot); this module
//! writes them the same way for all: stable names, so importing the same input again changes
//! nothing and a changed entry updates its task in place; `--dry-run` says exactly what would
//! happen and writes nothing; each task is written in its own audited transaction, so none is
//! half-written; a code or built-in task of the same name is never overwritten. The report
//! lists created / updated / unchanged / skipped (with where and why); exit 1 when anything
//! was skipped.

mod apscheduler;
mod crontab;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use scheduler_actors::builtin::validate_handler_args;
use scheduler_core::{TaskDecl, Trigger, TriggerDecl};

use super::{cli_actor, open_db_to_add, store_error};
use crate::cli::InvalidInput;
use crate::settings::Settings;

pub(crate) use self::apscheduler::ApschedulerArgs;
pub(crate) use self::crontab::CrontabArgs;

/// `cronmesh import ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// A crontab file: each line becomes a `shell` task run through the shell as cron does.
    Crontab(CrontabArgs),
    /// An APScheduler 3 job store, as `scripts/apscheduler-export.py` writes it: each job
    /// becomes a task with the same fire times, run by the handler the map names.
    Apscheduler(ApschedulerArgs),
}

/// One entry of the input: where it is (for the report), and the task it becomes or why it
/// cannot.
pub(super) struct Wanted {
    /// Sorts the report: the line number, or the job's position.
    pub(super) order: usize,
    /// `line 6`, `job cleanup`.
    pub(super) label: String,
    pub(super) task: Result<TaskDecl, String>,
}

/// What happens to one entry.
enum Plan {
    Create(TaskDecl),
    Update(TaskDecl, Vec<&'static str>),
    Unchanged(String),
}

/// Every problem of a task's fields (and its trigger) in one line, as the report shows it.
pub(super) fn check_fields(decl: &TaskDecl) -> Result<(), String> {
    decl.validate(|_| None).map(|_| ()).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// A job id in the characters a task name holds: letters lower-cased (two ids differing only
/// in case then share a name, and the second is refused), anything else that a name cannot
/// hold becomes `_`.
pub(crate) fn task_part(id: &str) -> String {
    let out: String = id
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".to_owned() } else { out }
}

/// Checks `--module`: a module name that is not cronmesh's own.
pub(super) fn check_module(module: &str) -> Result<(), InvalidInput> {
    if store::is_built_in(&format!("{module}.x")) {
        return Err(InvalidInput(format!(
            "--module {module}: that module is reserved for cronmesh's built-in tasks"
        )));
    }
    if scheduler_core::validate_name(&format!("{module}.x")).is_err() {
        return Err(InvalidInput(format!(
            "--module {} is not a module name (lower-case letters, digits, _ and -)",
            scheduler_core::quoted(module)
        )));
    }
    Ok(())
}

/// The fields an import sets that differ between what is stored and what the file says.
fn differences(stored: &TaskDecl, wanted: &TaskDecl) -> Vec<&'static str> {
    let mut out = Vec::new();
    let same_trigger = match (&stored.trigger, &wanted.trigger) {
        (TriggerDecl::Json(a), TriggerDecl::Json(b)) => {
            Trigger::from_json(a).ok().map(|t| t.to_json())
                == Trigger::from_json(b).ok().map(|t| t.to_json())
        }
        (a, b) => a == b,
    };
    if !same_trigger {
        out.push("schedule");
    }
    if stored.handler != wanted.handler || stored.handler_args != wanted.handler_args {
        out.push("command");
    }
    if stored.owner != wanted.owner {
        out.push("owner");
    }
    if stored.description != wanted.description {
        out.push("description");
    }
    if stored.alert_routes != wanted.alert_routes {
        out.push("alert routes");
    }
    if stored.misfire != wanted.misfire
        || stored.misfire_grace_secs != wanted.misfire_grace_secs
        || stored.overlap != wanted.overlap
    {
        out.push("policies");
    }
    out
}

pub(crate) async fn run(settings: &Settings, cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ImportCommand::Crontab(args) => crontab::run(settings, args).await,
        ImportCommand::Apscheduler(args) => apscheduler::run(settings, args).await,
    }
}

/// Writes the wanted tasks (or says what it would write) and reports; `source` names the
/// input in the report and the audit trail. With `shadow`, the tasks it creates start in
/// shadow mode; tasks that exist keep theirs (a re-import never undoes a cut-over).
pub(super) async fn write_all(
    settings: &Settings,
    wanted: Vec<Wanted>,
    mut skipped: Vec<(usize, String, String)>,
    (dry_run, shadow): (bool, bool),
    source: &str,
) -> anyhow::Result<ExitCode> {
    // A dry run against a SQLite file that does not exist yet creates nothing: every task
    // would be new.
    let db = match settings.database.sqlite_path() {
        Some(path) if dry_run && !path.exists() => None,
        _ if dry_run => Some(super::open_db(settings).await?),
        _ => Some(open_db_to_add(settings).await?),
    };
    let mut plans: Vec<(String, Plan)> = Vec::new();
    for Wanted { order, label, task } in wanted {
        let decl = match task {
            Ok(decl) => decl,
            Err(reason) => {
                skipped.push((order, label, reason));
                continue;
            }
        };
        let name = decl.name.clone();
        let found = match &db {
            Some(db) => store::get_task(db, &name).await,
            None => Err(store::StoreError::NotFound {
                what: "task",
                name: name.clone(),
            }),
        };
        let plan = match found {
            Ok(task) if task.row.source != "runtime" || store::is_built_in(&name) => {
                skipped.push((
                    order,
                    label,
                    format!(
                        "task {name} exists and is not a runtime task (it is declared by {}); choose another --module",
                        task.row.source
                    ),
                ));
                continue;
            }
            Ok(task) => {
                let changed = differences(&task.decl(), &decl);
                if changed.is_empty() {
                    Plan::Unchanged(name)
                } else {
                    Plan::Update(decl, changed)
                }
            }
            Err(store::StoreError::NotFound { .. }) => {
                let mut decl = decl;
                if shadow {
                    decl.shadow = scheduler_core::Shadow::On;
                }
                Plan::Create(decl)
            }
            Err(e) => return Err(e.into()),
        };
        plans.push((label, plan));
    }
    let who = cli_actor().because(format!("import {source}"));
    let check =
        |d: &TaskDecl| validate_handler_args(&d.handler, d.handler_args.as_ref(), &|_| true);
    let verb = |done: &'static str, would: &'static str| if dry_run { would } else { done };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut shadow_kept: Vec<String> = Vec::new();
    let db = db.as_ref();
    for (label, plan) in plans {
        match plan {
            Plan::Create(decl) => {
                if let Some(db) = db.filter(|_| !dry_run) {
                    store::insert_runtime_task(db, &decl, &check, &who)
                        .await
                        .map_err(store_error)
                        .with_context(|| label.clone())?;
                }
                println!(
                    "{} {} ({label}{})",
                    verb("created", "would create"),
                    decl.name,
                    if decl.shadow.is_set() { ", shadow" } else { "" }
                );
                *counts.entry("created").or_default() += 1;
            }
            Plan::Update(decl, changed) => {
                if let Some(db) = db.filter(|_| !dry_run) {
                    let wanted = decl.clone();
                    store::update_task_decl(
                        db,
                        &decl.name,
                        None,
                        move |d| {
                            d.trigger = wanted.trigger;
                            d.handler = wanted.handler;
                            d.handler_args = wanted.handler_args;
                            d.owner = wanted.owner;
                            d.description = wanted.description;
                            d.alert_routes = wanted.alert_routes;
                            d.misfire = wanted.misfire;
                            d.misfire_grace_secs = wanted.misfire_grace_secs;
                            d.overlap = wanted.overlap;
                        },
                        &check,
                        &who,
                    )
                    .await
                    .map_err(store_error)
                    .with_context(|| label.clone())?;
                }
                println!(
                    "{} {} ({label}): {}",
                    verb("updated", "would update"),
                    decl.name,
                    changed.join(", ")
                );
                *counts.entry("updated").or_default() += 1;
                if shadow {
                    shadow_kept.push(decl.name);
                }
            }
            Plan::Unchanged(name) => {
                println!("unchanged {name} ({label})");
                if shadow {
                    shadow_kept.push(name);
                }
                *counts.entry("unchanged").or_default() += 1;
            }
        }
    }
    if !shadow_kept.is_empty() {
        println!(
            "note: --shadow applies to tasks this import creates; {} task(s) that exist keep their mode (use `cronmesh tasks shadow` for them)",
            shadow_kept.len()
        );
    }
    skipped.sort();
    for (_, label, reason) in &skipped {
        println!("skipped {label}: {reason}");
    }
    println!(
        "{source}: {} created, {} updated, {} unchanged, {} skipped{}",
        counts.get("created").unwrap_or(&0),
        counts.get("updated").unwrap_or(&0),
        counts.get("unchanged").unwrap_or(&0),
        skipped.len(),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if !dry_run && counts.keys().any(|k| *k != "unchanged") {
        super::notify_nodes(settings, "import").await;
    }
    Ok(if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
