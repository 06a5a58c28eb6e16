//! Billing: an application that schedules its own jobs with cronmesh.
//!
//! The jobs are declared in this library crate, next to their code
//! ([`billing`]'s `cron_tasks.rs`); the application's binaries link them in:
//!
//! - `billing-node` runs a cronmesh node inside the application's own actix System, with the
//!   application's state for the handlers, a run-event subscriber that raises an alert when
//!   a job fails, and an actor of its own that watches what the scheduler holds;
//! - `billing-ctl` is the cronmesh command line under the application's name, with the
//!   application's jobs and a subcommand of its own.
//!
//! A binary keeps a library's `cron_task!` registrations only if it uses the library: both
//! binaries use [`Ledger`]; one that used nothing from here would need `use embedded_app as _;`
//! (and `billing-ctl check` would say so).

pub mod billing;

pub use billing::Ledger;

/// The README's Rust examples, compiled (and the embedded program type-checked) by
/// `cargo test --doc`.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;
