//! `cronmesh import crontab FILE`: every line of a crontab as a `shell` task that runs it as
//! cron would, with stable names, so importing the same file again changes nothing and a
//! changed line updates its task. `--dry-run` says exactly what would happen and writes
//! nothing. The report lists created / updated / unchanged / skipped (with the line and why);
//! exit 1 when anything was skipped.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use scheduler_actors::builtin::validate_handler_args;
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, Trigger, TriggerDecl};

use super::{cli_actor, open_db_to_add, store_error};
use crate::cli::InvalidInput;
use crate::crontab::{self, CronEntry};
use crate::settings::Settings;

/// `cronmesh import ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ImportCommand {
    /// A crontab file: each line becomes a `shell` task run through the shell as cron does.
    Crontab(CrontabArgs),
}

/// Arguments of `cronmesh import crontab`.
#[derive(Debug, clap::Args)]
pub(crate) struct CrontabArgs {
    /// The crontab file (a user's `crontab -l`, or /etc/crontab with --system).
    file: PathBuf,
    /// Module of the tasks (their names are MODULE.NAME).
    #[arg(long, default_value = "crontab")]
    module: String,
    /// Owner of the tasks.
    #[arg(long, default_value = "")]
    owner: String,
    /// Zone of the schedules that no CRON_TZ line sets (default: this host's zone, as cron
    /// would use).
    #[arg(long)]
    tz: Option<String>,
    /// The /etc/crontab format: a user field after the schedule.
    #[arg(long)]
    system: bool,
    /// Say what would happen; write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What happens to one entry.
enum Plan {
    Create(TaskDecl),
    Update(TaskDecl, Vec<&'static str>),
    Unchanged(String),
}

/// This host's zone, as cron reads local time: `TZ`, else /etc/timezone, else the zone
/// /etc/localtime links to, else UTC.
fn host_zone() -> String {
    let candidates = [
        std::env::var("TZ")
            .ok()
            .map(|z| z.trim_start_matches(':').to_owned()),
        std::fs::read_to_string("/etc/timezone").ok(),
        std::fs::read_link("/etc/localtime").ok().and_then(|p| {
            let text = p.to_string_lossy().into_owned();
            text.split_once("zoneinfo/")
                .map(|(_, zone)| zone.to_owned())
        }),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|z| z.trim().to_owned())
        .find(|z| scheduler_core::parse_zone(z).is_ok())
        .unwrap_or_else(|| "UTC".to_owned())
}

/// The name part of a task from its command: the program's file name, in the characters a
/// task name may hold.
fn slug(command: &str) -> String {
    // Past `VAR=value`, `cd DIR &&` and wrappers to the program itself.
    let mut words = command.split_whitespace();
    let mut program = "job";
    while let Some(word) = words.next() {
        match word {
            "cd" => {
                words.next();
            }
            "&&" | ";" | "||" | "exec" | "nice" | "nohup" | "env" => {}
            w if w.contains('=') || w.starts_with('-') => {}
            w => {
                program = w;
                break;
            }
        }
    }
    let base = program.rsplit('/').next().unwrap_or(program);
    let mut out: String = base
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
    out = out.trim_matches('_').to_owned();
    out.truncate(60);
    if out.is_empty() {
        "job".to_owned()
    } else {
        out
    }
}

/// The task an entry becomes.
fn decl_of(
    entry: &CronEntry,
    name: &str,
    args: &CrontabArgs,
    default_zone: &str,
) -> Result<TaskDecl, String> {
    let zone = entry.zone.as_deref().unwrap_or(default_zone);
    let trigger = Trigger::cron(&entry.schedule, zone).map_err(|e| e.to_string())?;
    let shell = entry.shell().to_owned();
    let (program, argv) = match &entry.user {
        Some(user) => (
            "runuser".to_owned(),
            vec![
                "-u".to_owned(),
                user.clone(),
                "--".to_owned(),
                shell.clone(),
                "-c".to_owned(),
                entry.command.clone(),
            ],
        ),
        None => (shell.clone(), vec!["-c".to_owned(), entry.command.clone()]),
    };
    let mut handler_args = serde_json::json!({
        "program": program,
        "args": argv,
        "env": entry.env,
    });
    if let Some(stdin) = &entry.stdin {
        handler_args["stdin"] = serde_json::json!(stdin);
    }
    // The file's name, not its line or path: a line moving down the file, or the same file
    // imported from another directory, is still the same task, unchanged.
    let file = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let mut description =
        format!("from crontab {file}: runs the line through {shell} -c as cron does");
    if let Some(user) = &entry.user {
        description.push_str(&format!(", as {user} (runuser: the node must run as root)"));
    }
    if let Some(mailto) = &entry.mailto {
        description.push_str(&format!("; MAILTO {mailto}"));
    }
    let decl = TaskDecl::trigger_json(name, &trigger.to_json())
        .handler("shell")
        .handler_args(handler_args)
        .owner(&args.owner)
        .description(&description)
        // Cron runs a missed minute never and lets runs overlap.
        .misfire(MisfirePolicy::Skip)
        .overlap(OverlapPolicy::Allow)
        .origin("crontab");
    decl.validate(|_| None).map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    validate_handler_args("shell", decl.handler_args.as_ref(), &|_| false)?;
    Ok(decl)
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
    if stored.misfire != wanted.misfire || stored.overlap != wanted.overlap {
        out.push("policies");
    }
    out
}

pub(crate) async fn run(settings: &Settings, cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Crontab(args) = cmd;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| InvalidInput(format!("cannot read crontab {}: {e}", args.file.display())))?;
    if store::is_built_in(&format!("{}.x", args.module)) {
        return Err(InvalidInput(format!(
            "--module {}: that module is reserved for cronmesh's built-in tasks",
            args.module
        ))
        .into());
    }
    if scheduler_core::validate_name(&format!("{}.x", args.module)).is_err() {
        return Err(InvalidInput(format!(
            "--module {} is not a module name (lower-case letters, digits, _ and -)",
            scheduler_core::quoted(&args.module)
        ))
        .into());
    }
    let default_zone = match &args.tz {
        Some(zone) => {
            scheduler_core::parse_zone(zone).map_err(|e| InvalidInput(format!("--tz: {e}")))?;
            zone.clone()
        }
        None => host_zone(),
    };
    let tab = crontab::parse(&text, args.system);
    let mut skipped: Vec<(usize, String)> = tab
        .skipped
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect();
    // A dry run against a SQLite file that does not exist yet creates nothing: every task
    // would be new.
    let db = match settings.database.sqlite_path() {
        Some(path) if args.dry_run && !path.exists() => None,
        _ if args.dry_run => Some(super::open_db(settings).await?),
        _ => Some(open_db_to_add(settings).await?),
    };
    // Names asked for with a comment are reserved first; the others take the first free
    // `PROGRAM`, `PROGRAM_2`, ... in file order. No two lines ever share a task.
    let mut used: HashSet<String> = HashSet::new();
    let mut plans: Vec<(usize, Plan)> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    for entry in &tab.entries {
        let asked = entry
            .name
            .as_ref()
            .map(|n| format!("{}.{n}", args.module))
            .filter(|n| used.insert(n.clone()));
        if entry.name.is_some() && asked.is_none() {
            skipped.push((
                entry.line,
                format!(
                    "the name {} is asked for by an earlier line too",
                    scheduler_core::quoted(entry.name.as_deref().unwrap_or_default())
                ),
            ));
        }
        names.push(asked);
    }
    for (entry, asked) in tab.entries.iter().zip(names) {
        if entry.name.is_some() && asked.is_none() {
            continue;
        }
        let name = match asked {
            Some(name) => name,
            None => {
                let base = slug(&entry.command);
                (1..)
                    .map(|n| {
                        if n == 1 {
                            format!("{}.{base}", args.module)
                        } else {
                            format!("{}.{base}_{n}", args.module)
                        }
                    })
                    .find(|n| used.insert(n.clone()))
                    .unwrap_or_default()
            }
        };
        let decl = match decl_of(entry, &name, &args, &default_zone) {
            Ok(decl) => decl,
            Err(reason) => {
                skipped.push((entry.line, reason));
                continue;
            }
        };
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
                    entry.line,
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
            Err(store::StoreError::NotFound { .. }) => Plan::Create(decl),
            Err(e) => return Err(e.into()),
        };
        plans.push((entry.line, plan));
    }
    let who = cli_actor().because(format!("import crontab {}", args.file.display()));
    let check =
        |d: &TaskDecl| validate_handler_args(&d.handler, d.handler_args.as_ref(), &|_| false);
    let verb = |done: &'static str, would: &'static str| if args.dry_run { would } else { done };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let db = db.as_ref();
    for (line, plan) in plans {
        match plan {
            Plan::Create(decl) => {
                if let Some(db) = db.filter(|_| !args.dry_run) {
                    store::insert_runtime_task(db, &decl, &check, &who)
                        .await
                        .map_err(store_error)
                        .with_context(|| format!("line {line}"))?;
                }
                println!(
                    "{} {} (line {line})",
                    verb("created", "would create"),
                    decl.name
                );
                *counts.entry("created").or_default() += 1;
            }
            Plan::Update(decl, changed) => {
                if let Some(db) = db.filter(|_| !args.dry_run) {
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
                            d.misfire = wanted.misfire;
                            d.overlap = wanted.overlap;
                        },
                        &check,
                        &who,
                    )
                    .await
                    .map_err(store_error)
                    .with_context(|| format!("line {line}"))?;
                }
                println!(
                    "{} {} (line {line}): {}",
                    verb("updated", "would update"),
                    decl.name,
                    changed.join(", ")
                );
                *counts.entry("updated").or_default() += 1;
            }
            Plan::Unchanged(name) => {
                println!("unchanged {name} (line {line})");
                *counts.entry("unchanged").or_default() += 1;
            }
        }
    }
    skipped.sort();
    for (line, reason) in &skipped {
        println!("skipped line {line}: {reason}");
    }
    println!(
        "{}: {} created, {} updated, {} unchanged, {} skipped{}",
        args.file.display(),
        counts.get("created").unwrap_or(&0),
        counts.get("updated").unwrap_or(&0),
        counts.get("unchanged").unwrap_or(&0),
        skipped.len(),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if !args.dry_run && counts.keys().any(|k| *k != "unchanged") {
        super::notify_nodes(settings, "import").await;
    }
    Ok(if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_program() {
        assert_eq!(slug("/usr/local/bin/backup --all"), "backup");
        assert_eq!(slug("cd /srv && ./Deploy.sh"), "deploy_sh");
        assert_eq!(
            slug("cd / && run-parts --report /etc/cron.hourly"),
            "run-parts"
        );
        assert_eq!(slug("FOO=1 python3 /opt/x.py"), "python3");
        assert_eq!(slug("%%%"), "job");
    }
}
