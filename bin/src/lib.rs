//! cronmesh as a command line, for the `cronmesh` binary and for applications that link
//! their own tasks in and want every subcommand:
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     // Every `cron_task!` linked into this binary is picked up.
//!     cronmesh::cli::run(scheduler_actors::CodeTasks::from_inventory())
//! }
//! ```
//!
//! `anyhow` lives only here; the library crates return typed errors.

pub mod cli;
/// The clap this crate is built on, for an [`cli::App`]'s own subcommands.
pub use clap;
mod commands;
mod crontab;
mod error;
mod logging;
pub mod settings;
