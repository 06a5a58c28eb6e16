//! What the web console needs: `console_session` (a signed-in browser: the SHA-256 of its
//! cookie, the token it signed in with, when it expires), and indexes that keep the tasks
//! table's sorted pages fast with many tasks (sort column, then name).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ConsoleSession {
    Table,
    IdSha256,
    TokenName,
    TokenFingerprint,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ScheduledTask {
    Table,
    Name,
    Module,
    Owner,
    LastStatus,
}

/// `(index, sort column)` for the tasks table's sorts other than by name.
fn sort_indexes() -> [(&'static str, ScheduledTask); 3] {
    [
        ("ix_scheduled_task_module_name", ScheduledTask::Module),
        ("ix_scheduled_task_owner_name", ScheduledTask::Owner),
        (
            "ix_scheduled_task_last_status_name",
            ScheduledTask::LastStatus,
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSession::Table)
                    .col(string_len(ConsoleSession::IdSha256, 64).primary_key())
                    .col(string(ConsoleSession::TokenName))
                    .col(string_len(ConsoleSession::TokenFingerprint, 64))
                    .col(timestamp_with_time_zone(ConsoleSession::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleSession::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_console_session_expires_at")
                    .table(ConsoleSession::Table)
                    .col(ConsoleSession::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        for (name, col) in sort_indexes() {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ScheduledTask::Table)
                        .col(col)
                        .col(ScheduledTask::Name)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in sort_indexes() {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(ScheduledTask::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ConsoleSession::Table).to_owned())
            .await
    }
}
