//! The `cronmesh` binary: the CLI with the built-in tasks.

use std::process::ExitCode;

fn main() -> ExitCode {
    cronmesh::cli::run(scheduler_actors::CodeTasks::from_inventory())
}
