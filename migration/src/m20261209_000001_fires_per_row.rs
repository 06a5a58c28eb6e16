//! How many fires a `task_run` row stands for (issue 16's overload). A node that gives up a
//! task's fires one after another while it is behind writes one `misfired` row for the run
//! of them, not one per fire: under overload the database cannot take a row per given-up
//! fire on top of the runs, and a full write buffer loses records. The catch-up after
//! downtime already wrote one row for many skipped fires; now the count is a column, not
//! only words in `error`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum TaskRun {
    Table,
    /// 1 for a fire's own row; more for a `misfired` row written for several fires.
    Fires,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TaskRun::Table)
                    .add_column(
                        ColumnDef::new(TaskRun::Fires)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TaskRun::Table)
                    .drop_column(TaskRun::Fires)
                    .to_owned(),
            )
            .await
    }
}
