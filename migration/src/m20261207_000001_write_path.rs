//! Fewer index writes per fire (issue 16's sustained load).
//!
//! - `task_run`: the two indexes over `status` (every row, whatever its status) become one
//!   partial index over the rows still to be settled (`running`, `interrupted`), by status and
//!   node: a finished row leaves it, so the outcome's update writes four index entries instead
//!   of six, and the reaper and the start-up's settling read only what is unsettled.
//! - `scheduled_task`: no index over the status fields (`next_run_at`, `last_status`), which
//!   change with every fire; on Postgres their update is then a heap-only (HOT) update, and the
//!   table keeps room on each page for it (fill factor 60). Filtering tasks by last status
//!   reads the name index instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The rows a node or the reaper may still have to settle. The predicate is written exactly
/// so in the queries that use it (SQLite uses a partial index only for a query that repeats
/// its terms).
const UNSETTLED: &str = "CREATE INDEX ix_task_run_unsettled ON task_run (status, node_id, id) \
     WHERE status IN ('running', 'interrupted')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for index in [
            "ix_task_run_status",
            "ix_task_run_node_status",
            "ix_scheduled_task_next_run_at",
            "ix_scheduled_task_last_status_name",
        ] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        db.execute_unprepared(UNSETTLED).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Applies to pages written from now on; existing pages get the room back as
            // they are rewritten.
            db.execute_unprepared("ALTER TABLE scheduled_task SET (fillfactor = 60)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE scheduled_task RESET (fillfactor)")
                .await?;
        }
        db.execute_unprepared("DROP INDEX IF EXISTS ix_task_run_unsettled")
            .await?;
        for create in [
            "CREATE INDEX ix_task_run_status ON task_run (status)",
            "CREATE INDEX ix_task_run_node_status ON task_run (node_id, status)",
            "CREATE INDEX ix_scheduled_task_next_run_at ON scheduled_task (next_run_at)",
            "CREATE INDEX ix_scheduled_task_last_status_name ON scheduled_task (last_status, name)",
        ] {
            db.execute_unprepared(create).await?;
        }
        Ok(())
    }
}
