//! `cronmesh import crontab FILE`: every line of a crontab (read by `crate::crontab`) as a
//! `shell` task that runs it as cron would.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use scheduler_actors::builtin::validate_handler_args;
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, Trigger};

use super::{Wanted, check_module, write_all};
use crate::cli::InvalidInput;
use crate::crontab::{self, CronEntry};
use crate::settings::Settings;

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
    /// Create the tasks in shadow mode: their fires are recorded as `shadow` and nothing runs
    /// until `cronmesh tasks cutover` (tasks that exist keep their mode).
    #[arg(long)]
    shadow: bool,
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
    let mut decl = TaskDecl::trigger_json(name, &trigger.to_json())
        .handler("shell")
        .handler_args(handler_args)
        .owner(&args.owner)
        .description(&description)
        // Cron runs a missed minute never and lets runs overlap.
        .misfire(MisfirePolicy::Skip)
        .overlap(OverlapPolicy::Allow)
        .origin("crontab");
    // MAILTO names the alert route of the same name, if one is configured (cron's list of
    // addresses, comma-separated, names one route each).
    if let Some(mailto) = &entry.mailto {
        decl.alert_routes = mailto
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
    }
    super::check_fields(&decl)?;
    validate_handler_args("shell", decl.handler_args.as_ref(), &|_| false)?;
    Ok(decl)
}

pub(super) async fn run(settings: &Settings, args: CrontabArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| InvalidInput(format!("cannot read crontab {}: {e}", args.file.display())))?;
    check_module(&args.module)?;
    let default_zone = match &args.tz {
        Some(zone) => {
            scheduler_core::parse_zone(zone).map_err(|e| InvalidInput(format!("--tz: {e}")))?;
            zone.clone()
        }
        None => host_zone(),
    };
    let tab = crontab::parse(&text, args.system);
    let line = |n: usize| format!("line {n}");
    let mut skipped: Vec<(usize, String, String)> = tab
        .skipped
        .iter()
        .map(|s| (s.line, line(s.line), s.reason.clone()))
        .collect();
    // Names asked for with a comment are reserved first; the others take the first free
    // `PROGRAM`, `PROGRAM_2`, ... in file order. No two lines ever share a task.
    let mut used: HashSet<String> = HashSet::new();
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
                line(entry.line),
                format!(
                    "the name {} is asked for by an earlier line too",
                    scheduler_core::quoted(entry.name.as_deref().unwrap_or_default())
                ),
            ));
        }
        names.push(asked);
    }
    let mut wanted = Vec::new();
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
        wanted.push(Wanted {
            order: entry.line,
            label: line(entry.line),
            task: decl_of(entry, &name, &args, &default_zone),
        });
    }
    let source = format!("crontab {}", args.file.display());
    write_all(
        settings,
        wanted,
        skipped,
        (args.dry_run, args.shadow),
        &source,
    )
    .await
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
