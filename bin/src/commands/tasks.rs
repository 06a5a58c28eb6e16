//! `cronmesh tasks ...`: list, inspect, add and steer tasks, straight in the database.
//! A running node applies a change within about a second (it watches the task versions).

use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use scheduler_actors::builtin::{builtin, validate_handler_args};
use scheduler_actors::{CodeTasks, known_handlers};
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, Trigger, TriggerDecl};
use store::StoredTask;

use super::output::{table, when};
use super::{cli_actor, next_fire_or_warn, open_db, open_db_to_add, store_error};
use crate::cli::InvalidInput;
use crate::settings::Settings;

/// `tasks` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// List tasks.
    List {
        /// Only tasks of this module.
        #[arg(long)]
        module: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show one task.
    Show {
        /// Task name.
        name: String,
    },
    /// Add a runtime task.
    Add(Box<AddArgs>),
    /// Remove a task (its run history stays).
    Remove {
        /// Task name.
        name: String,
    },
    /// Enable a task (overrides the code default).
    Enable {
        /// Task name.
        name: String,
    },
    /// Disable a task (overrides the code default).
    Disable {
        /// Task name.
        name: String,
    },
    /// Run a task once now, in addition to its schedule.
    RunNow {
        /// Task name.
        name: String,
    },
    /// Give a task a new trigger (overrides the code default).
    SetTrigger {
        /// Task name.
        name: String,
        #[command(flatten)]
        trigger: TriggerArgs,
    },
    /// Shadow mode: fires are computed, claimed and recorded as `shadow`, and the handler does
    /// not run (to compare with the scheduler cronmesh replaces); `--off` runs them for real.
    Shadow {
        #[command(flatten)]
        which: super::shadow::Selection,
        /// Take the tasks out of shadow mode: they run for real from their next fire.
        #[arg(long)]
        off: bool,
    },
    /// Set a task's own alert routes (the list given replaces the old; none clears it) and its
    /// dead-man check.
    SetAlerts {
        /// Task name.
        name: String,
        #[command(flatten)]
        alerts: AlertArgs,
    },
    /// Cut tasks in shadow mode over: from the fire at --at on they run for real; earlier
    /// fires stay shadow. Stop the old scheduler's jobs just before that instant.
    Cutover {
        #[command(flatten)]
        which: super::shadow::Selection,
        /// RFC 3339 instant, at least 10 s ahead (e.g. 2027-01-04T09:00:00Z).
        #[arg(long, value_name = "TIME")]
        at: String,
    },
}

/// One way to say when a task fires.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TriggerArgs {
    /// A cron expression.
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,
    /// A full trigger JSON.
    #[arg(long, value_name = "JSON")]
    trigger_json: Option<String>,
    /// The name of a shared trigger conf.
    #[arg(long, value_name = "NAME")]
    trigger_conf: Option<String>,
}

/// Arguments of `tasks add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Dotted name, `module.task`.
    name: String,
    #[command(flatten)]
    trigger: TriggerArgs,
    /// Zone of a --cron expression (default UTC; a trigger JSON or conf names its own).
    #[arg(long)]
    tz: Option<String>,
    /// Handler: shell, http, noop, sleep, or a code handler's path.
    #[arg(long)]
    handler: String,
    /// handler_args as a JSON object.
    #[arg(long, value_name = "JSON")]
    args: Option<String>,
    /// Owner.
    #[arg(long, default_value = "")]
    owner: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Run timeout in seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Misfire policy: skip, fire_once or fire_all:N.
    #[arg(long, default_value = "fire_once")]
    misfire: String,
    /// How late (seconds) a fire may start and still count as on time.
    #[arg(long, value_name = "SECS")]
    misfire_grace: Option<u64>,
    /// Overlap policy: forbid or allow.
    #[arg(long, default_value = "forbid")]
    overlap: String,
    /// Re-run a fire whose node died mid-run.
    #[arg(long)]
    recover: bool,
    /// Fire lock ttl in seconds (decimals allowed, at least 0.1).
    #[arg(long, value_name = "SECS")]
    lock_ttl: Option<f64>,
    /// Add it disabled.
    #[arg(long)]
    disabled: bool,
    /// Add it in shadow mode: fires are recorded as `shadow` and the handler does not run
    /// until `tasks cutover`.
    #[arg(long)]
    shadow: bool,
    #[command(flatten)]
    alerts: AlertArgs,
}

/// A task's own alert options.
#[derive(Debug, Args)]
pub(crate) struct AlertArgs {
    /// Also alert through this route (a name in [[alerts.routes]]); repeat for more.
    #[arg(long = "alert-route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// Alert (`silent`) when the task has had no success for this many seconds (at least 60;
    /// 0 turns the check off).
    #[arg(long = "alert-if-no-success-for", value_name = "SECS")]
    if_no_success_for: Option<u64>,
}

impl AlertArgs {
    /// A warning for each route named that this machine's config does not have (the nodes'
    /// config decides; a name no node knows sends nothing).
    fn warn_unknown(&self, settings: &Settings) {
        for route in &self.routes {
            if settings.alerts.route(route.trim()).is_none() {
                let known: Vec<&str> = settings
                    .alerts
                    .routes
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                eprintln!(
                    "warning: no alert route named {} in this config ({}); the nodes' [[alerts.routes]] must have it, or the task's alerts go nowhere",
                    scheduler_core::quoted(route),
                    if known.is_empty() {
                        "it has none".to_owned()
                    } else {
                        format!("it has {}", known.join(", "))
                    }
                );
            }
        }
    }

    fn apply(&self, decl: &mut TaskDecl, replace_routes: bool) {
        if replace_routes || !self.routes.is_empty() {
            decl.alert_routes = self.routes.iter().map(|r| r.trim().to_owned()).collect();
        }
        if let Some(secs) = self.if_no_success_for {
            decl.alert_if_no_success_for_secs = (secs > 0).then_some(secs);
        }
    }
}

impl TriggerArgs {
    fn decl(&self, tz: &str) -> TriggerDecl {
        match (&self.cron, &self.trigger_json, &self.trigger_conf) {
            (Some(expr), _, _) => TriggerDecl::Cron {
                expr: expr.clone(),
                timezone: tz.to_owned(),
            },
            (_, Some(json), _) => TriggerDecl::Json(json.clone()),
            (_, _, Some(conf)) => TriggerDecl::Conf(conf.clone()),
            _ => unreachable!("clap requires exactly one"),
        }
    }
}

fn invalid(msg: String) -> anyhow::Error {
    anyhow::Error::new(InvalidInput(msg))
}

impl AddArgs {
    fn decl(&self) -> anyhow::Result<TaskDecl> {
        if let (Some(tz), None) = (&self.tz, &self.trigger.cron) {
            return Err(invalid(format!(
                "--tz {tz:?} is the zone of a --cron expression; a trigger JSON or a trigger conf names its own"
            )));
        }
        let mut decl = match self.trigger.decl(self.tz.as_deref().unwrap_or("UTC")) {
            TriggerDecl::Cron { expr, timezone } => {
                TaskDecl::cron(&self.name, &expr).timezone(&timezone)
            }
            TriggerDecl::Json(json) => TaskDecl::trigger_json(&self.name, &json),
            TriggerDecl::Conf(conf) => TaskDecl::trigger_conf(&self.name, &conf),
        }
        .handler(&self.handler)
        .owner(&self.owner)
        .description(&self.description)
        .recover(self.recover)
        .origin("cli");
        if let Some(args) = &self.args {
            let value: serde_json::Value = serde_json::from_str(args)
                .map_err(|e| invalid(format!("--args {args:?} is not valid JSON: {e}")))?;
            decl = decl.handler_args(value);
        }
        decl.timeout_secs = self.timeout;
        decl.misfire = self
            .misfire
            .parse::<MisfirePolicy>()
            .map_err(|e| invalid(e.to_string()))?;
        decl.overlap = self
            .overlap
            .parse::<OverlapPolicy>()
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(grace) = self.misfire_grace {
            decl.misfire_grace_secs = grace;
        }
        if let Some(ttl) = self.lock_ttl {
            if !ttl.is_finite() || ttl <= 0.0 {
                return Err(invalid(format!(
                    "--lock-ttl {ttl} must be a positive number of seconds"
                )));
            }
            decl.lock_ttl_ms = (ttl * 1000.0).round() as u64;
        }
        decl.enabled = !self.disabled;
        if self.shadow {
            decl.shadow = scheduler_core::Shadow::On;
        }
        self.alerts.apply(&mut decl, false);
        Ok(decl)
    }
}

/// A stored task's trigger, its shared conf resolved (`None` if it does not validate).
async fn resolved_trigger(
    db: &sea_orm::DatabaseConnection,
    task: &StoredTask,
) -> anyhow::Result<Option<Trigger>> {
    let confs = match &task.conf_name {
        Some(_) => store::trigger_confs(db).await?,
        None => Vec::new(),
    };
    let conf = |name: &str| {
        confs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, json)| Trigger::from_json(json).ok())
    };
    Ok(task.decl().validate(conf).ok().map(|spec| spec.trigger))
}

fn trigger_text(t: &StoredTask) -> String {
    match (&t.conf_name, &t.row.trigger_json) {
        (Some(conf), _) => format!("conf {conf}"),
        (None, Some(json)) => {
            Trigger::from_json(json).map_or_else(|e| format!("invalid: {e}"), |t| t.to_string())
        }
        (None, None) => "-".to_owned(),
    }
}

pub(crate) async fn run(
    settings: &Settings,
    code_tasks: &CodeTasks,
    cmd: TasksCommand,
) -> anyhow::Result<ExitCode> {
    let db = match &cmd {
        TasksCommand::Add(_) => open_db_to_add(settings).await?,
        _ => open_db(settings).await?,
    };
    let changed = !matches!(cmd, TasksCommand::List { .. } | TasksCommand::Show { .. });
    match cmd {
        TasksCommand::List { module, json } => {
            let tasks: Vec<StoredTask> = store::load_tasks(&db)
                .await?
                .into_iter()
                .filter(|t| module.as_ref().is_none_or(|m| &t.row.module == m))
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(tasks.iter().map(StoredTask::to_json).collect())
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = table([
                "NAME",
                "MODULE",
                "OWNER",
                "SOURCE",
                "ENABLED",
                "TRIGGER",
                "NEXT RUN",
                "LAST STATUS",
            ]);
            for task in &tasks {
                let r = &task.row;
                let enabled = match scheduler_core::Shadow::from_columns(r.shadow, r.cutover_at) {
                    _ if r.orphaned => "orphaned".to_owned(),
                    scheduler_core::Shadow::On => format!("{} (shadow)", r.enabled),
                    scheduler_core::Shadow::Until(at) if at > Utc::now() => {
                        format!(
                            "{} (shadow until {})",
                            r.enabled,
                            scheduler_core::rfc3339(at)
                        )
                    }
                    _ => r.enabled.to_string(),
                };
                let source = if store::is_built_in(&r.name) {
                    "built-in".to_owned()
                } else {
                    r.source.clone()
                };
                t.add_row([
                    r.name.clone(),
                    r.module.clone(),
                    r.owner.clone(),
                    source,
                    enabled,
                    trigger_text(task),
                    when(r.next_run_at),
                    r.last_status.clone().unwrap_or_else(|| "-".to_owned()),
                ]);
            }
            println!("{t}");
        }
        TasksCommand::Show { name } => {
            let task = store::get_task(&db, &name).await.map_err(store_error)?;
            println!("{}", serde_json::to_string_pretty(&task.to_json())?);
        }
        TasksCommand::Add(args) => {
            args.alerts.warn_unknown(settings);
            let decl = args.decl()?;
            let handlers = known_handlers(code_tasks, true);
            let check = |d: &TaskDecl| {
                validate_handler_args(&d.handler, d.handler_args.as_ref(), &|h| {
                    handlers.contains_key(h) && builtin(h).is_none()
                })
            };
            let row = store::insert_runtime_task(&db, &decl, &check, &cli_actor())
                .await
                .map_err(store_error)?;
            // Added: what follows only describes it, and cannot make the add fail.
            let (text, next) = match store::get_task(&db, &row.name).await {
                Ok(task) => {
                    let trigger = resolved_trigger(&db, &task).await.ok().flatten();
                    let next =
                        trigger.and_then(|t| next_fire_or_warn(&format!("task {}", row.name), &t));
                    (trigger_text(&task), next)
                }
                Err(_) => ("?".to_owned(), None),
            };
            println!("added task {} ({text}; next fire {})", row.name, when(next));
        }
        TasksCommand::Remove { name } => {
            store::remove_task(&db, &name, &cli_actor())
                .await
                .map_err(store_error)?;
            println!("removed task {name}");
        }
        TasksCommand::Enable { name } => {
            store::set_enabled(&db, &name, true, &cli_actor())
                .await
                .map_err(store_error)?;
            println!("enabled task {name}");
        }
        TasksCommand::Disable { name } => {
            store::set_enabled(&db, &name, false, &cli_actor())
                .await
                .map_err(store_error)?;
            println!("disabled task {name}");
        }
        TasksCommand::RunNow { name } => {
            let at = Utc::now();
            store::request_run_now(&db, &name, at, &cli_actor())
                .await
                .map_err(store_error)?;
            println!(
                "requested a run of {name} at {}",
                scheduler_core::rfc3339(at)
            );
            if let Ok(task) = store::get_task(&db, &name).await
                && scheduler_core::Shadow::from_columns(task.row.shadow, task.row.cutover_at)
                    .covers(at)
            {
                println!(
                    "note: {name} is in shadow mode: the run is recorded as `shadow` and its handler does not run"
                );
            }
        }
        TasksCommand::SetTrigger { name, trigger } => {
            // A bare --cron here is read in the zone of the task's current cron trigger.
            let current = store::get_task(&db, &name).await.map_err(store_error)?;
            let zone = current
                .row
                .trigger_json
                .as_deref()
                .and_then(|j| Trigger::from_json(j).ok())
                .and_then(|t| match t {
                    Trigger::Cron { schedule, .. } => Some(schedule.zone().name().to_owned()),
                    _ => None,
                })
                .unwrap_or_else(|| "UTC".to_owned());
            let new_trigger = trigger.decl(&zone);
            // Only the trigger changes: the handler and its arguments stay as checked when
            // they were written (an application's handlers need not be in this binary).
            store::update_task_decl(
                &db,
                &name,
                None,
                |d| d.trigger = new_trigger,
                &|_| Ok(()),
                &cli_actor(),
            )
            .await
            .map_err(store_error)?;
            let task = store::get_task(&db, &name).await?;
            if let Some(t) = resolved_trigger(&db, &task).await? {
                next_fire_or_warn(&format!("task {name}"), &t);
            }
            println!("task {name} now fires on {}", trigger_text(&task));
        }
        TasksCommand::SetAlerts { name, alerts } => {
            alerts.warn_unknown(settings);
            store::update_task_decl(
                &db,
                &name,
                None,
                |d| alerts.apply(d, true),
                &|_| Ok(()),
                &cli_actor(),
            )
            .await
            .map_err(store_error)?;
            let task = store::get_task(&db, &name).await?.to_json();
            println!(
                "task {name}: alert routes {}, silent after {}",
                task["alert_routes"],
                task["alert_if_no_success_for_secs"].as_i64().map_or_else(
                    || "never".to_owned(),
                    |s| format!("{s} s without a success")
                )
            );
        }
        TasksCommand::Shadow { which, off } => super::shadow::set_mode(&db, &which, !off).await?,
        TasksCommand::Cutover { which, at } => super::shadow::cut_over(&db, &which, &at).await?,
    }
    if changed {
        super::notify_nodes(settings, "tasks").await;
    }
    Ok(ExitCode::SUCCESS)
}
