//! Alerts: `alert_delivery` (every alert a node sent or gave up on: route, event, task, run,
//! outcome, attempts, how many similar alerts the throttle folded into it), and two task
//! options: `alert_routes` (routes a task names besides the configured matches, a JSON array)
//! and `alert_if_no_success_for_ms` (the dead-man check: alert when a task has had no success
//! for that long).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AlertDelivery {
    Table,
    Id,
    Route,
    Event,
    TaskName,
    RunId,
    FireTsMs,
    NodeId,
    State,
    Attempts,
    HttpStatus,
    Error,
    Suppressed,
    CreatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum ScheduledTask {
    Table,
    AlertRoutes,
    AlertIfNoSuccessForMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AlertDelivery::Table)
                    .col(big_pk_auto(AlertDelivery::Id))
                    .col(string(AlertDelivery::Route))
                    .col(string_len(AlertDelivery::Event, 16))
                    .col(string(AlertDelivery::TaskName))
                    .col(string_null(AlertDelivery::RunId))
                    .col(big_integer_null(AlertDelivery::FireTsMs))
                    .col(string(AlertDelivery::NodeId))
                    .col(string_len(AlertDelivery::State, 16))
                    .col(integer(AlertDelivery::Attempts))
                    .col(integer_null(AlertDelivery::HttpStatus))
                    .col(text_null(AlertDelivery::Error))
                    .col(big_integer(AlertDelivery::Suppressed))
                    .col(timestamp_with_time_zone(AlertDelivery::CreatedAt))
                    .col(timestamp_with_time_zone_null(AlertDelivery::FinishedAt))
                    .to_owned(),
            )
            .await?;
        for (name, first) in [
            ("ix_alert_delivery_task_id", AlertDelivery::TaskName),
            ("ix_alert_delivery_route_id", AlertDelivery::Route),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AlertDelivery::Table)
                        .col(first)
                        .col(AlertDelivery::Id)
                        .to_owned(),
                )
                .await?;
        }
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .add_column(text_null(ScheduledTask::AlertRoutes))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ScheduledTask::Table)
                    .add_column(big_integer_null(ScheduledTask::AlertIfNoSuccessForMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ScheduledTask::AlertIfNoSuccessForMs,
            ScheduledTask::AlertRoutes,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ScheduledTask::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(AlertDelivery::Table).to_owned())
            .await
    }
}
