//! What the operations API needs: `audit_event` (who changed what, written with the change),
//! `cluster_state` (the cluster-wide pause), and a real counter for task versions (a sequence
//! on Postgres, a counter row on SQLite) in place of `MAX(version) + 1`, which two writers
//! could read at once.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuditEvent {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    BeforeJson,
    AfterJson,
    Reason,
}

#[derive(DeriveIden)]
enum ClusterState {
    Table,
    Id,
    Paused,
    Reason,
    ChangedAt,
    ChangedBy,
}

#[derive(DeriveIden)]
enum VersionCounter {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvent::Table)
                    .col(big_pk_auto(AuditEvent::Id))
                    .col(timestamp_with_time_zone(AuditEvent::At))
                    .col(string(AuditEvent::Actor))
                    .col(string(AuditEvent::Action))
                    .col(string(AuditEvent::Target))
                    .col(text_null(AuditEvent::BeforeJson))
                    .col(text_null(AuditEvent::AfterJson))
                    .col(text_null(AuditEvent::Reason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_event_target")
                    .table(AuditEvent::Table)
                    .col(AuditEvent::Target)
                    .col(AuditEvent::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClusterState::Table)
                    .col(integer(ClusterState::Id).primary_key())
                    .col(boolean(ClusterState::Paused).default(false))
                    .col(text_null(ClusterState::Reason))
                    .col(timestamp_with_time_zone(ClusterState::ChangedAt))
                    .col(string(ClusterState::ChangedBy))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let now = match manager.get_database_backend() {
            DbBackend::Postgres => "now()",
            _ => "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')",
        };
        db.execute_unprepared(&format!(
            "INSERT INTO cluster_state (id, paused, changed_at, changed_by) VALUES (1, false, {now}, 'migration')"
        ))
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("CREATE SEQUENCE task_version_seq")
                .await?;
            db.execute_unprepared(
                "SELECT setval('task_version_seq', (SELECT COALESCE(MAX(version), 0) + 1 FROM scheduled_task), false)",
            )
            .await?;
        } else {
            manager
                .create_table(
                    Table::create()
                        .table(VersionCounter::Table)
                        .col(string(VersionCounter::Name).primary_key())
                        .col(big_integer(VersionCounter::Value))
                        .to_owned(),
                )
                .await?;
            db.execute_unprepared(
                "INSERT INTO version_counter (name, value) SELECT 'task', COALESCE(MAX(version), 0) FROM scheduled_task",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP SEQUENCE task_version_seq")
                .await?;
        } else {
            manager
                .drop_table(Table::drop().table(VersionCounter::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ClusterState::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AuditEvent::Table).to_owned())
            .await
    }
}
