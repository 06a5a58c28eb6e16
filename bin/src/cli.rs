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
    /// Apply pending database migrations.
    Migrate,
}

/// Parses the process arguments and runs the command with `tasks` as the code tasks.
pub fn run(tasks: CodeTasks) -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli, tasks) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::error::report(&e));
            crate::error::exit_code(&e)
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
        Command::Run(args) => {
            settings.demo_enabled |= args.demo;
            commands::run::run(&settings, tasks)
        }
        Command::Check => block_on(commands::check::run(&settings, &tasks)),
        Command::Migrate => block_on(commands::migrate::run(&settings)),
        Command::Tasks(cmd) => block_on(commands::tasks::run(&settings, &tasks, *cmd)),
        Command::Triggers(cmd) => block_on(commands::triggers::run(&settings, cmd)),
        Command::Runs(args) => block_on(commands::runs::run(&settings, args)),
        Command::Inspect(args) => block_on(commands::inspect::run(&settings, args)),
        Command::Nodes(args) => block_on(commands::nodes::run(&settings, args)),
    }
}

fn block_on<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}
