//! The scheduling columns of task rows: what a node reads of every task at start-up and at
//! every reload. A node keeps only this of an idle task and reads the whole row
//! ([`crate::load_tasks_by_ids`]) when the task is about to fire; with a million tasks, half
//! the columns read is half the start-up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::scheduled_task::Column as T;
use scheduler_core::TaskDecl;
use sea_orm::sea_query::{Expr, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};

use crate::error::Result;

/// The columns of a task row that decide when it fires and whether this node runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// Row id.
    pub id: i64,
    /// Task name.
    pub name: String,
    /// Handler name.
    pub handler: String,
    /// Inline trigger JSON (when not a shared conf).
    pub trigger_json: Option<String>,
    /// Name of the shared trigger conf.
    pub conf_name: Option<String>,
    /// Whether it fires.
    pub enabled: bool,
    /// Its handler is in no running binary.
    pub orphaned: bool,
    /// Misfire policy, as stored.
    pub misfire: String,
    /// Misfire grace.
    pub misfire_grace_ms: i64,
    /// Overlap policy, as stored.
    pub overlap: String,
    /// Run timeout.
    pub timeout_ms: Option<i64>,
    /// Fire lock ttl.
    pub lock_ttl_ms: i64,
    /// Latest run-now request.
    pub run_now_at: Option<DateTime<Utc>>,
    /// Last fire.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Next fire, as last written.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version (moves with every change a node schedules by).
    pub version: i64,
}

/// The columns read, in the order [`ScheduleRow::from_result`] takes them.
const COLUMNS: [T; 17] = [
    T::Id,
    T::Name,
    T::Handler,
    T::TriggerJson,
    T::TriggerConfId,
    T::Enabled,
    T::Orphaned,
    T::Misfire,
    T::MisfireGraceMs,
    T::Overlap,
    T::TimeoutMs,
    T::LockTtlMs,
    T::RunNowAt,
    T::LastRunAt,
    T::NextRunAt,
    T::UpdatedAt,
    T::Version,
];

impl ScheduleRow {
    /// Read by position (no lookup of column names: this runs a million times at start-up).
    fn from_result(r: &QueryResult, confs: &BTreeMap<i64, String>) -> Result<Self> {
        let conf_id: Option<i64> = r.try_get_by_index(4)?;
        Ok(ScheduleRow {
            id: r.try_get_by_index(0)?,
            name: r.try_get_by_index(1)?,
            handler: r.try_get_by_index(2)?,
            trigger_json: r.try_get_by_index(3)?,
            conf_name: conf_id.and_then(|id| confs.get(&id).cloned()),
            enabled: r.try_get_by_index(5)?,
            orphaned: r.try_get_by_index(6)?,
            misfire: r.try_get_by_index(7)?,
            misfire_grace_ms: r.try_get_by_index(8)?,
            overlap: r.try_get_by_index(9)?,
            timeout_ms: r.try_get_by_index(10)?,
            lock_ttl_ms: r.try_get_by_index(11)?,
            run_now_at: r.try_get_by_index(12)?,
            last_run_at: r.try_get_by_index(13)?,
            next_run_at: r.try_get_by_index(14)?,
            updated_at: r.try_get_by_index(15)?,
            version: r.try_get_by_index(16)?,
        })
    }

    /// The row as a declaration of what it schedules by, to validate like any other (the
    /// columns not read stay at their defaults; the whole row is validated when it is loaded).
    pub fn decl(&self) -> TaskDecl {
        Scheduling {
            name: &self.name,
            conf_name: self.conf_name.as_deref(),
            trigger_json: self.trigger_json.as_deref(),
            handler: &self.handler,
            enabled: self.enabled,
            misfire: &self.misfire,
            misfire_grace_ms: self.misfire_grace_ms,
            overlap: &self.overlap,
            timeout_ms: self.timeout_ms,
            lock_ttl_ms: self.lock_ttl_ms,
        }
        .decl()
    }
}

/// The scheduling columns of a row, borrowed: the one way from them to a declaration, for
/// a row of those columns and for a whole row ([`crate::StoredTask::decl`]).
pub(crate) struct Scheduling<'a> {
    pub(crate) name: &'a str,
    pub(crate) conf_name: Option<&'a str>,
    pub(crate) trigger_json: Option<&'a str>,
    pub(crate) handler: &'a str,
    pub(crate) enabled: bool,
    pub(crate) misfire: &'a str,
    pub(crate) misfire_grace_ms: i64,
    pub(crate) overlap: &'a str,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) lock_ttl_ms: i64,
}

impl Scheduling<'_> {
    pub(crate) fn decl(&self) -> TaskDecl {
        let mut decl = match (self.conf_name, self.trigger_json) {
            (Some(conf), _) => TaskDecl::trigger_conf(self.name, conf),
            (None, Some(json)) => TaskDecl::trigger_json(self.name, json),
            // Reported by validation as an unparsable trigger.
            (None, None) => TaskDecl::trigger_json(self.name, ""),
        }
        .handler(self.handler)
        .misfire_grace_secs((self.misfire_grace_ms.max(0) / 1000) as u64)
        .lock_ttl_ms(self.lock_ttl_ms.max(0) as u64)
        .origin("database");
        decl.enabled = self.enabled;
        decl.timeout_secs = self.timeout_ms.map(|ms| (ms.max(0) as u64).div_ceil(1000));
        // Policies were validated on the way in; a row edited by hand falls back to defaults
        // rather than stopping every other task.
        decl.misfire = self.misfire.parse().unwrap_or_default();
        decl.overlap = self.overlap.parse().unwrap_or_default();
        decl
    }
}

/// A page of task rows' scheduling columns: ids above `after_id`, by id, at most `limit`.
pub async fn load_schedule_page(
    db: &DatabaseConnection,
    confs: &BTreeMap<i64, String>,
    after_id: i64,
    limit: u64,
) -> Result<Vec<ScheduleRow>> {
    use sea_orm::ExprTrait as _;
    let select = Query::select()
        .columns(COLUMNS.map(|c| (ScheduledTask, c)))
        .from(ScheduledTask)
        .and_where(Expr::col((ScheduledTask, T::Id)).gt(after_id))
        .order_by((ScheduledTask, T::Id), Order::Asc)
        .limit(limit)
        .to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter()
        .map(|r| ScheduleRow::from_result(r, confs))
        .collect()
}
