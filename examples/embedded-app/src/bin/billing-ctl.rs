//! The billing application's command line: every cronmesh subcommand under its own name,
//! with billing's jobs, and a `ledger` subcommand of its own.

use std::process::ExitCode;

use cronmesh::clap::{Arg, Command};
use cronmesh::cli::App;
use embedded_app::Ledger;
use scheduler_actors::CodeTasks;

fn main() -> ExitCode {
    App::new("billing-ctl")
        .version("1.0.0")
        .about("Billing's scheduled jobs, on cronmesh")
        .hide_bench()
        .command(
            Command::new("ledger")
                .about("Print the ledger's entries")
                .arg(
                    Arg::new("file")
                        .long("file")
                        .default_value("billing-ledger.txt"),
                ),
            |args| {
                let file = args.get_one::<String>("file").cloned().unwrap_or_default();
                let entries = Ledger::new(file, None).entries();
                for entry in &entries {
                    println!("{entry}");
                }
                println!("{} entries", entries.len());
                ExitCode::SUCCESS
            },
        )
        .run(CodeTasks::from_inventory())
}
