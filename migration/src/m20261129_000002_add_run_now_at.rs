//! `scheduled_task.run_now_at`: an operator's request for one extra run (`tasks run-now`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ScheduledTask {
    Table,
    RunNowAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .add_column(timestamp_with_time_zone_null(ScheduledTask::RunNowAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .drop_column(ScheduledTask::RunNowAt)
                    .to_owned(),
            )
            .await
    }
}
