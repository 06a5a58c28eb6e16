//! The four tables of cronmesh (docs/architecture.md, "Data"): trigger_conf, scheduled_task, task_run, scheduler_node.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum TriggerConf {
    Table,
    Id,
    Name,
    TriggerJson,
    Description,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScheduledTask {
    Table,
    Id,
    Name,
    Module,
    Handler,
    HandlerArgs,
    TriggerConfId,
    TriggerJson,
    Enabled,
    Owner,
    Description,
    TimeoutMs,
    Misfire,
    MisfireGraceMs,
    Overlap,
    Recover,
    LockTtlMs,
    Source,
    Orphaned,
    ScheduleOverridden,
    NextRunAt,
    LastRunAt,
    LastStatus,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaskRun {
    Table,
    Id,
    RunId,
    TaskName,
    FireTsMs,
    Attempt,
    NodeId,
    Status,
    StartedAt,
    FinishedAt,
    DurationMs,
    Error,
    Output,
}

#[derive(DeriveIden)]
enum SchedulerNode {
    Table,
    NodeId,
    Host,
    Pid,
    Version,
    AdminUrl,
    StartedAt,
    LastHeartbeat,
    State,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TriggerConf::Table)
                    .col(big_pk_auto(TriggerConf::Id))
                    .col(string_uniq(TriggerConf::Name))
                    .col(text(TriggerConf::TriggerJson))
                    .col(text(TriggerConf::Description).default(""))
                    .col(big_integer(TriggerConf::Version).default(1))
                    .col(timestamp_with_time_zone(TriggerConf::CreatedAt))
                    .col(timestamp_with_time_zone(TriggerConf::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScheduledTask::Table)
                    .col(big_pk_auto(ScheduledTask::Id))
                    .col(string_uniq(ScheduledTask::Name))
                    .col(string(ScheduledTask::Module))
                    .col(string(ScheduledTask::Handler))
                    .col(json_null(ScheduledTask::HandlerArgs))
                    .col(big_integer_null(ScheduledTask::TriggerConfId))
                    .col(text_null(ScheduledTask::TriggerJson))
                    .col(boolean(ScheduledTask::Enabled).default(true))
                    .col(string(ScheduledTask::Owner).default(""))
                    .col(text(ScheduledTask::Description).default(""))
                    .col(big_integer_null(ScheduledTask::TimeoutMs))
                    .col(string_len(ScheduledTask::Misfire, 32).default("fire_once"))
                    .col(big_integer(ScheduledTask::MisfireGraceMs).default(1000))
                    .col(string_len(ScheduledTask::Overlap, 16).default("forbid"))
                    .col(boolean(ScheduledTask::Recover).default(false))
                    .col(big_integer(ScheduledTask::LockTtlMs).default(30_000))
                    .col(string_len(ScheduledTask::Source, 16))
                    .col(boolean(ScheduledTask::Orphaned).default(false))
                    .col(boolean(ScheduledTask::ScheduleOverridden).default(false))
                    .col(timestamp_with_time_zone_null(ScheduledTask::NextRunAt))
                    .col(timestamp_with_time_zone_null(ScheduledTask::LastRunAt))
                    .col(string_len_null(ScheduledTask::LastStatus, 16))
                    .col(big_integer(ScheduledTask::Version).default(1))
                    .col(timestamp_with_time_zone(ScheduledTask::CreatedAt))
                    .col(timestamp_with_time_zone(ScheduledTask::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scheduled_task_trigger_conf")
                            .from(ScheduledTask::Table, ScheduledTask::TriggerConfId)
                            .to(TriggerConf::Table, TriggerConf::Id)
                            // A conf in use cannot be removed.
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_scheduled_task_next_run_at", ScheduledTask::NextRunAt),
            ("ix_scheduled_task_module", ScheduledTask::Module),
            (
                "ix_scheduled_task_trigger_conf_id",
                ScheduledTask::TriggerConfId,
            ),
            ("ix_scheduled_task_version", ScheduledTask::Version),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(ScheduledTask::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TaskRun::Table)
                    .col(big_pk_auto(TaskRun::Id))
                    .col(string_len_uniq(TaskRun::RunId, 36))
                    .col(string(TaskRun::TaskName))
                    .col(big_integer(TaskRun::FireTsMs))
                    .col(integer(TaskRun::Attempt).default(1))
                    .col(string(TaskRun::NodeId))
                    .col(string_len(TaskRun::Status, 16))
                    .col(timestamp_with_time_zone(TaskRun::StartedAt))
                    .col(timestamp_with_time_zone_null(TaskRun::FinishedAt))
                    .col(big_integer_null(TaskRun::DurationMs))
                    .col(text_null(TaskRun::Error))
                    .col(text_null(TaskRun::Output))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_task_run_task_fire")
                    .table(TaskRun::Table)
                    .col(TaskRun::TaskName)
                    .col(TaskRun::FireTsMs)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_task_run_status", vec![TaskRun::Status]),
            (
                "ix_task_run_node_status",
                vec![TaskRun::NodeId, TaskRun::Status],
            ),
            ("ix_task_run_started_at", vec![TaskRun::StartedAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(TaskRun::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SchedulerNode::Table)
                    .col(string(SchedulerNode::NodeId).primary_key())
                    .col(string(SchedulerNode::Host))
                    .col(integer(SchedulerNode::Pid))
                    .col(string_len(SchedulerNode::Version, 32))
                    .col(string_null(SchedulerNode::AdminUrl))
                    .col(timestamp_with_time_zone(SchedulerNode::StartedAt))
                    .col(timestamp_with_time_zone(SchedulerNode::LastHeartbeat))
                    .col(string_len(SchedulerNode::State, 16))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_scheduler_node_state_heartbeat")
                    .table(SchedulerNode::Table)
                    .col(SchedulerNode::State)
                    .col(SchedulerNode::LastHeartbeat)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SchedulerNode::Table.into_iden(),
            TaskRun::Table.into_iden(),
            ScheduledTask::Table.into_iden(),
            TriggerConf::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
