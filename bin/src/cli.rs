//! Command-line parsing and dispatch. Exit codes are decided in `error.rs`: 0 success, 1 a
//! failure or a problem found (`check`), 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scheduler_actors::CodeTasks;

use crate::commands;
pub use crate::error::InvalidInput;

/// cronmesh: a distributed cron scheduler; every fire of every task runs once across the
/// cluster and is recorded in a database.
#[derive(Debug, Parser)]
#[command(
    name = "cronmesh",
    version,
    about = "cronmesh: a distributed cron scheduler. Every fire of every task runs once across the cluster and is recorded in a database.",
    long_about = None
)]
pub struct Cli {
    /// Config file (default: ./cronmesh.toml if present). Env `CRONMESH__SECTION__KEY` overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format: text (default) or json (one object per line, for log shippers).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Options of `run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Also run the `demo.heartbeat` task (every 10 s), to see the node at work.
    #[arg(long)]
    demo: bool,
    /// Shadow mode for every task on this node: fires are computed, claimed and recorded as
    /// `shadow` rows, and no handler runs (a task's own cut-over still wins). Run every node of
    /// the cluster this way, or none.
    #[arg(long)]
    shadow: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until SIGINT/SIGTERM (embedded default: SQLite cronmesh.db, in-process locks).
    Run(RunArgs),
    /// List, add and steer tasks.
    #[command(subcommand)]
    Tasks(Box<commands::tasks::TasksCommand>),
    /// Shared trigger confs.
    #[command(subcommand)]
    Triggers(commands::triggers::TriggersCommand),
    /// Run history.
    Runs(commands::runs::RunsArgs),
    /// A running node's actor mailbox metrics.
    Inspect(commands::inspect::InspectArgs),
    /// Nodes of the cluster: state, last heartbeat, what runs where.
    Nodes(commands::nodes::NodesArgs),
    /// Measure: a node in this process, N tasks every second, lateness and throughput.
    Bench(commands::bench::BenchArgs),
    /// Print the next fire times of a cron expression or a trigger JSON.
    Next(commands::next::NextArgs),
    /// Print every registered task and every registry problem; exit 1 on any problem.
    Check,
    /// Pause the whole cluster: no task fires on any node until `resume`.
    Pause(commands::cluster::PauseArgs),
    /// Resume the whole cluster; missed fires follow each task's misfire policy.
    Resume(commands::cluster::ResumeArgs),
    /// Who changed what, newest first (every change made through the CLI or the API).
    Audit(commands::cluster::AuditArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Apply pending database migrations.
    Migrate,
    /// Bring tasks in from another scheduler.
    #[command(subcommand)]
    Import(commands::import::ImportCommand),
    /// Compare the old scheduler's runs (JSON lines) with cronmesh's records over a window,
    /// per task: matched, missing, extra, at another time; exit 1 on any difference.
    ShadowDiff(commands::shadow_diff::ShadowDiffArgs),
    /// Alerts: send a test through a route, list deliveries.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCommand),
}

/// Parses the process arguments and runs the command with `tasks` as the code tasks: the
/// `cronmesh` command line as it is. [`App`] makes it the application's own.
pub fn run(tasks: CodeTasks) -> ExitCode {
    App::new("cronmesh").run(tasks)
}

/// A subcommand of the application's own, and what runs it.
type AppCommand = (clap::Command, Box<dyn Fn(&clap::ArgMatches) -> ExitCode>);

/// The cronmesh command line as an application's own: its name, version and about text,
/// every cronmesh subcommand (`run`, `tasks`, `check`, ...) with the application's tasks
/// linked in, `bench` hidden if it likes, and subcommands of its own.
///
/// ```no_run
/// use std::process::ExitCode;
///
/// use cronmesh::cli::App;
/// use scheduler_actors::CodeTasks;
///
/// fn main() -> ExitCode {
///     App::new("billing-ctl")
///         .version("2.4.0")
///         .about("Billing's scheduled jobs")
///         .hide_bench()
///         .command(
///             cronmesh::clap::Command::new("ledger").about("Print the ledger's balance"),
///             |_args| {
///                 println!("balance: 0");
///                 ExitCode::SUCCESS
///             },
///         )
///         .run(CodeTasks::from_inventory())
/// }
/// ```
pub struct App {
    name: &'static str,
    version: Option<&'static str>,
    about: Option<&'static str>,
    hide_bench: bool,
    commands: Vec<AppCommand>,
}

impl App {
    /// The command line of the program `name` (as help and errors call it).
    pub fn new(name: &'static str) -> Self {
        App {
            name,
            version: None,
            about: None,
            hide_bench: false,
            commands: Vec::new(),
        }
    }

    /// The version `--version` prints (default: cronmesh's).
    pub fn version(mut self, version: &'static str) -> Self {
        self.version = Some(version);
        self
    }

    /// The text at the top of `--help` (default: cronmesh's).
    pub fn about(mut self, about: &'static str) -> Self {
        self.about = Some(about);
        self
    }

    /// Leaves `bench` out of the help (it still runs when named).
    pub fn hide_bench(mut self) -> Self {
        self.hide_bench = true;
        self
    }

    /// A subcommand of the application's own: `run` gets its arguments and gives the exit
    /// code. Its name must not be one of cronmesh's (`run`, `tasks`, ...): such an
    /// application refuses to start, saying so.
    pub fn command(
        mut self,
        command: clap::Command,
        run: impl Fn(&clap::ArgMatches) -> ExitCode + 'static,
    ) -> Self {
        self.commands.push((command, Box::new(run)));
        self
    }

    /// Parses the process arguments and runs the command.
    pub fn run(self, tasks: CodeTasks) -> ExitCode {
        self.run_from(std::env::args_os(), tasks)
    }

    /// Parses `args` (the program name first) and runs the command.
    pub fn run_from<I, T>(self, args: I, tasks: CodeTasks) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command().name(self.name).bin_name(self.name);
        if let Some(version) = self.version {
            command = command.version(version);
        }
        if let Some(about) = self.about {
            command = command.about(about);
        }
        if self.hide_bench {
            command = command.mut_subcommand("bench", |c| c.hide(true));
        }
        for (own, _) in &self.commands {
            if command.find_subcommand(own.get_name()).is_some() {
                eprintln!(
                    "error: the application's subcommand `{}` has the name of a cronmesh subcommand; rename it",
                    own.get_name()
                );
                return ExitCode::from(2);
            }
            command = command.subcommand(own.clone());
        }
        let matches = match command.try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                // Help and version are not errors; a usage error is bad input.
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        };
        if let Some((name, sub)) = matches.subcommand()
            && let Some((_, run)) = self.commands.iter().find(|(c, _)| c.get_name() == name)
        {
            return run(sub);
        }
        let result = Cli::from_arg_matches(&matches)
            .map_err(|e| anyhow::Error::new(InvalidInput(e.to_string())))
            .and_then(|cli| dispatch(cli, tasks));
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", crate::error::report(&e));
                crate::error::exit_code(&e)
            }
        }
    }
}

fn dispatch(cli: Cli, tasks: CodeTasks) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Next(args) => return commands::next::run(args),
        Command::Bench(args) => return commands::bench::run(args),
        _ => {}
    }
    let mut settings = crate::settings::Settings::load(cli.config.as_deref())?;
    if let Some(format) = &cli.log_format {
        settings.log_format = format.parse().map_err(InvalidInput)?;
    }
    match cli.command {
        Command::Next(_) | Command::Bench(_) => unreachable!("handled above"),
        Command::Token(cmd) => commands::token::run(cmd),
        Command::Run(args) => {
            settings.demo_enabled |= args.demo;
            settings.shadow = args.shadow;
            commands::run::run(&settings, tasks)
        }
        Command::Check => block_on(commands::check::run(&settings, &tasks)),
        Command::Migrate => block_on(commands::migrate::run(&settings)),
        Command::Import(cmd) => block_on(commands::import::run(&settings, cmd)),
        Command::ShadowDiff(args) => block_on(commands::shadow_diff::run(&settings, args)),
        Command::Alerts(cmd) => block_on(commands::alerts::run(&settings, cmd)),
        Command::Tasks(cmd) => block_on(commands::tasks::run(&settings, &tasks, *cmd)),
        Command::Triggers(cmd) => block_on(commands::triggers::run(&settings, cmd)),
        Command::Runs(args) => block_on(commands::runs::run(&settings, args)),
        Command::Inspect(args) => block_on(commands::inspect::run(&settings, args)),
        Command::Nodes(args) => block_on(commands::nodes::run(&settings, args)),
        Command::Pause(args) => block_on(commands::cluster::pause(&settings, args)),
        Command::Resume(args) => block_on(commands::cluster::resume(&settings, args)),
        Command::Audit(args) => block_on(commands::cluster::audit(&settings, args)),
    }
}

fn block_on<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
