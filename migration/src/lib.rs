//! The cronmesh schema, as an ordered list of migrations.
//!
//! Each migration is one file named `mYYYYMMDD_NNNNNN_<what>.rs` with `up` and `down`. A
//! migration that has shipped is never edited: change the schema with a new one.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_create_scheduler_tables;
mod m20261129_000002_add_run_now_at;
mod m20261203_000001_operations;
mod m20261204_000001_console;
mod m20261205_000001_shadow;
mod m20261206_000001_alerts;
mod m20261207_000001_write_path;
mod m20261208_000001_code_rows;
mod m20261209_000001_fires_per_row;

/// All migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_scheduler_tables::Migration),
            Box::new(m20261129_000002_add_run_now_at::Migration),
            Box::new(m20261203_000001_operations::Migration),
            Box::new(m20261204_000001_console::Migration),
            Box::new(m20261205_000001_shadow::Migration),
            Box::new(m20261206_000001_alerts::Migration),
            Box::new(m20261207_000001_write_path::Migration),
            Box::new(m20261208_000001_code_rows::Migration),
            Box::new(m20261209_000001_fires_per_row::Migration),
        ]
    }
}
