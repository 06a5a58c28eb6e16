//! Shadow mode and cut-over (`scheduled_task.shadow`, `scheduled_task.cutover_at`): a task in
//! shadow mode records its fires as `shadow` rows without running its handler; with a
//! cut-over instant, the fires from that instant on run for real.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ScheduledTask {
    Table,
    Shadow,
    CutoverAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .add_column(boolean(ScheduledTask::Shadow).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .add_column(timestamp_with_time_zone_null(ScheduledTask::CutoverAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ScheduledTask::CutoverAt, ScheduledTask::Shadow] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ScheduledTask::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
