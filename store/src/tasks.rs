//! `scheduled_task` rows: reading them, building them, bulk inserts and removals. The changes
//! operators make are in `task_changes.rs`; how a task is shown, in `task_json.rs`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::prelude::*;
use entity::{scheduled_task, trigger_conf};
use scheduler_core::{TaskDecl, Trigger, TriggerDecl};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::error::{Result, StoreError};
use crate::next_task_version;

/// A task row with the name of its shared trigger conf, if it uses one.
#[derive(Debug, Clone)]
pub struct StoredTask {
    /// The row.
    pub row: scheduled_task::Model,
    /// Name of the shared trigger conf.
    pub conf_name: Option<String>,
}

impl StoredTask {
    /// The row as a declaration, to validate like any other.
    pub fn decl(&self) -> TaskDecl {
        let r = &self.row;
        let mut decl = crate::schedule_rows::Scheduling {
            name: &r.name,
            conf_name: self.conf_name.as_deref(),
            trigger_json: r.trigger_json.as_deref(),
            handler: &r.handler,
            enabled: r.enabled,
            misfire: &r.misfire,
            misfire_grace_ms: r.misfire_grace_ms,
            overlap: &r.overlap,
            timeout_ms: r.timeout_ms,
            lock_ttl_ms: r.lock_ttl_ms,
        }
        .decl()
        .owner(&r.owner)
        .description(&r.description)
        .recover(r.recover);
        decl.handler_args = r.handler_args.clone();
        decl.shadow = scheduler_core::Shadow::from_columns(r.shadow, r.cutover_at);
        decl.alert_routes = r
            .alert_routes
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        decl.alert_if_no_success_for_secs = r
            .alert_if_no_success_for_ms
            .map(|ms| (ms.max(0) as u64) / 1000);
        decl
    }
}

/// What `COUNT(*)`, `MAX(version)` and `MAX(id)` say about `scheduled_task`: when any of them
/// moves, something a node schedules has changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromQueryResult)]
pub struct ChangeMark {
    /// Number of rows.
    pub count: i64,
    /// Highest version.
    pub max_version: i64,
    /// Highest row id: a task removed and added again moves it (ids are never reused), even
    /// when the count and the highest version come out the same.
    pub max_id: i64,
}

/// The current change mark.
pub async fn change_mark(db: &DatabaseConnection) -> Result<ChangeMark> {
    let mark = ScheduledTask::find()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "count")
        .column_as(Expr::cust("COALESCE(MAX(version), 0)"), "max_version")
        .column_as(Expr::cust("COALESCE(MAX(id), 0)"), "max_id")
        .into_model::<ChangeMark>()
        .one(db)
        .await?;
    Ok(mark.unwrap_or_default())
}

/// Trigger conf names by id.
pub async fn conf_names(db: &impl ConnectionTrait) -> Result<BTreeMap<i64, String>> {
    Ok(TriggerConf::find()
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

/// The names of every task of `module`, in name order.
pub async fn task_names_in_module(db: &DatabaseConnection, module: &str) -> Result<Vec<String>> {
    Ok(ScheduledTask::find()
        .select_only()
        .column(scheduled_task::Column::Name)
        .filter(scheduled_task::Column::Module.eq(module))
        .order_by_asc(scheduled_task::Column::Name)
        .into_tuple()
        .all(db)
        .await?)
}

/// Every task row, by name.
pub async fn load_tasks(db: &DatabaseConnection) -> Result<Vec<StoredTask>> {
    let confs = conf_names(db).await?;
    let rows = ScheduledTask::find()
        .order_by_asc(scheduled_task::Column::Name)
        .all(db)
        .await?;
    Ok(stored(rows, &confs))
}

/// Rows with the names of their trigger confs.
fn stored(rows: Vec<scheduled_task::Model>, confs: &BTreeMap<i64, String>) -> Vec<StoredTask> {
    rows.into_iter()
        .map(|row| StoredTask {
            conf_name: row.trigger_conf_id.and_then(|id| confs.get(&id).cloned()),
            row,
        })
        .collect()
}

/// A page of task rows: those with an id above `after_id`, by id, at most `limit`. Readers
/// of every row (a node at start-up, a reload) go page by page and keep only what they need,
/// so a million rows never sit in memory at once.
pub async fn load_task_page(
    db: &DatabaseConnection,
    confs: &BTreeMap<i64, String>,
    after_id: i64,
    limit: u64,
) -> Result<Vec<StoredTask>> {
    let rows = ScheduledTask::find()
        .filter(scheduled_task::Column::Id.gt(after_id))
        .order_by_asc(scheduled_task::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(stored(rows, confs))
}

/// The task rows with these ids (those that still exist), for a node that keeps only the
/// scheduling part of idle tasks and loads the rest when one is about to fire.
pub async fn load_tasks_by_ids(
    db: &DatabaseConnection,
    confs: &BTreeMap<i64, String>,
    ids: &[i64],
) -> Result<Vec<StoredTask>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows = ScheduledTask::find()
            .filter(scheduled_task::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        out.extend(stored(rows, confs));
    }
    Ok(out)
}

/// One task row.
pub async fn get_task(db: &impl ConnectionTrait, name: &str) -> Result<StoredTask> {
    let row = ScheduledTask::find()
        .filter(scheduled_task::Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::task_not_found(name))?;
    let conf_name = match row.trigger_conf_id {
        Some(id) => TriggerConf::find_by_id(id).one(db).await?.map(|c| c.name),
        None => None,
    };
    Ok(StoredTask { row, conf_name })
}

/// The stored form of a declaration's trigger: inline canonical JSON, or a conf id.
pub(crate) async fn stored_trigger(
    db: &impl ConnectionTrait,
    decl: &TriggerDecl,
) -> Result<(Option<String>, Option<i64>), StoreError> {
    let invalid = |e: scheduler_core::Error| StoreError::refused(e.to_string());
    match decl {
        TriggerDecl::Cron { expr, timezone } => Ok((
            Some(Trigger::cron(expr, timezone).map_err(invalid)?.to_json()),
            None,
        )),
        TriggerDecl::Json(json) => Ok((
            Some(Trigger::from_json(json).map_err(invalid)?.to_json()),
            None,
        )),
        TriggerDecl::Conf(name) => {
            let conf = TriggerConf::find()
                .filter(trigger_conf::Column::Name.eq(name))
                .one(db)
                .await?
                .ok_or_else(|| StoreError::conf_not_found(name))?;
            Ok((None, Some(conf.id)))
        }
    }
}

/// Where a task row came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// Declared in a binary's code, synced at start-up.
    Code,
    /// Added by an operator (CLI, API, import).
    Runtime,
}

/// A new task row for `decl` with its stored trigger (inline JSON or a conf id).
pub(crate) fn new_task_row(
    decl: &TaskDecl,
    (trigger_json, trigger_conf_id): (Option<String>, Option<i64>),
    source: Source,
    now: DateTime<Utc>,
) -> scheduled_task::ActiveModel {
    let mut active = scheduled_task::ActiveModel {
        name: Set(decl.name.clone()),
        trigger_json: Set(trigger_json),
        trigger_conf_id: Set(trigger_conf_id),
        enabled: Set(decl.enabled),
        source: Set(match source {
            Source::Code => "code",
            Source::Runtime => "runtime",
        }
        .to_owned()),
        orphaned: Set(false),
        schedule_overridden: Set(false),
        shadow: Set(decl.shadow.columns().0),
        cutover_at: Set(decl.shadow.columns().1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    apply_spec_fields(&mut active, decl);
    apply_alert_fields(&mut active, decl);
    active
}

/// Which stored fields a declaration sets, other than the schedule and the enabled flag.
pub(crate) fn apply_spec_fields(active: &mut scheduled_task::ActiveModel, decl: &TaskDecl) {
    active.module = Set(scheduler_core::validate_name(&decl.name)
        .unwrap_or_default()
        .to_owned());
    active.handler = Set(decl.handler.clone());
    active.handler_args = Set(decl.handler_args.clone());
    active.owner = Set(decl.owner.clone());
    active.description = Set(decl.description.clone());
    active.timeout_ms = Set(decl.timeout_secs.map(|s| s as i64 * 1000));
    active.misfire = Set(decl.misfire.to_string());
    active.misfire_grace_ms = Set(decl.misfire_grace_secs as i64 * 1000);
    active.overlap = Set(decl.overlap.to_string());
    active.recover = Set(decl.recover);
    active.lock_ttl_ms = Set(decl.lock_ttl_ms as i64);
}

/// Writes a declaration's alert options. They are operator state, like `enabled`: set when a
/// task is created (a code task's declaration gives the first values) and by an operator's
/// change, never by code-task sync, so a restart keeps what an operator set.
pub(crate) fn apply_alert_fields(active: &mut scheduled_task::ActiveModel, decl: &TaskDecl) {
    active.alert_routes = Set((!decl.alert_routes.is_empty())
        .then(|| serde_json::Value::from(decl.alert_routes.clone()).to_string()));
    active.alert_if_no_success_for_ms = Set(decl
        .alert_if_no_success_for_secs
        .map(|s| s.saturating_mul(1000) as i64));
}

/// Moves a task's version one past the table's highest, so nodes see that it changed.
pub(crate) async fn bump_version(db: &impl ConnectionTrait, id: i64) -> Result<()> {
    let version = next_task_version(db).await?;
    ScheduledTask::update_many()
        .col_expr(scheduled_task::Column::Version, Expr::value(version))
        .filter(scheduled_task::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Rows per bulk insert: about 20 binds a row keeps a chunk under SQLite's 32,766 and
/// Postgres' 65,535 bind parameters.
const INSERT_CHUNK: usize = 1000;
/// Distinct triggers kept parsed during a bulk insert.
const TRIGGER_CACHE_MAX: usize = 10_000;

/// A bulk insert's triggers: each distinct JSON parsed once (up to a bound) into its
/// canonical form.
#[derive(Default)]
struct CanonicalTriggers<'a> {
    parsed: HashMap<&'a str, (Trigger, String)>,
}

impl<'a> CanonicalTriggers<'a> {
    /// The declaration's inline trigger, parsed, with its canonical JSON.
    fn of(&mut self, decl: &'a TaskDecl) -> Result<(Trigger, String)> {
        let TriggerDecl::Json(json) = &decl.trigger else {
            return Err(StoreError::refused(format!(
                "task {:?}: a bulk insert takes inline trigger JSON only",
                decl.name
            )));
        };
        if let Some(known) = self.parsed.get(json.as_str()) {
            return Ok(known.clone());
        }
        let trigger = Trigger::from_json(json).map_err(|e| StoreError::refused(e.to_string()))?;
        let known = (trigger.clone(), trigger.to_json());
        if self.parsed.len() < TRIGGER_CACHE_MAX {
            self.parsed.insert(json, known.clone());
        }
        Ok(known)
    }
}

/// Adds many runtime tasks at once (loading a benchmark's or an import's tasks). Every spec
/// is validated before anything is written, each distinct trigger parsed once; shared trigger
/// confs are not resolved here (give inline triggers). Rows are built and written a chunk at
/// a time, and all get one new version. Returns how many were added.
pub async fn insert_runtime_tasks(db: &DatabaseConnection, decls: &[TaskDecl]) -> Result<u64> {
    let mut triggers = CanonicalTriggers::default();
    for decl in decls {
        if is_built_in(&decl.name) {
            return Err(StoreError::refused(format!(
                "task {:?}: the module `{BUILT_IN_MODULE}` is reserved for cronmesh's built-in tasks",
                decl.name
            )));
        }
        let (trigger, _) = triggers.of(decl)?;
        decl.validate_parsed(trigger).map_err(|errors| {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            StoreError::refused(all.join("; "))
        })?;
    }
    let version = next_task_version(db).await?;
    let now = Utc::now();
    let mut added = 0;
    for chunk in decls.chunks(INSERT_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for decl in chunk {
            let (_, canonical) = triggers.of(decl)?;
            let mut row = new_task_row(decl, (Some(canonical), None), Source::Runtime, now);
            row.version = Set(version);
            rows.push(row);
        }
        added += ScheduledTask::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(added)
}

/// Deletes every task whose name starts with `prefix` (their run history stays). Returns how
/// many went.
pub async fn remove_tasks_with_prefix(db: &DatabaseConnection, prefix: &str) -> Result<u64> {
    Ok(ScheduledTask::delete_many()
        .filter(scheduled_task::Column::Name.starts_with(prefix))
        .exec(db)
        .await?
        .rows_affected)
}

/// The order of a task listing. Every order ends with the name, so a page's last row is an
/// exact cursor for the next page (keyset paging: as fast on the thousandth page as the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSort {
    /// By name.
    #[default]
    Name,
    /// By module, then name.
    Module,
    /// By owner, then name.
    Owner,
}

impl TaskSort {
    /// The sort key of a row other than its name (`None` for [`TaskSort::Name`]).
    pub fn key_of(self, row: &scheduled_task::Model) -> Option<&str> {
        match self {
            TaskSort::Name => None,
            TaskSort::Module => Some(&row.module),
            TaskSort::Owner => Some(&row.owner),
        }
    }
}

/// Which tasks to list (the API's `GET /api/v1/tasks`, the console's tasks table): in the
/// order `sort` (reversed with `descending`), those after the cursor (`after_key`, `after`),
/// at most `limit`, narrowed by every filter given.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Only this module.
    pub module: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only enabled (or disabled) tasks.
    pub enabled: Option<bool>,
    /// Only tasks whose last run ended so.
    pub last_status: Option<String>,
    /// Only tasks whose name or description holds this text.
    pub text: Option<String>,
    /// Only names after this one (before it, `descending`); with another sort than by name,
    /// after this name among the rows whose sort key is `after_key`.
    pub after: Option<String>,
    /// The sort key of the cursor row (sorts other than by name).
    pub after_key: Option<String>,
    /// The order.
    pub sort: TaskSort,
    /// Reversed.
    pub descending: bool,
    /// At most this many.
    pub limit: u64,
}

/// Tasks as [`TaskQuery`] asks, by name.
pub async fn query_tasks(db: &DatabaseConnection, query: &TaskQuery) -> Result<Vec<StoredTask>> {
    use scheduled_task::Column as C;
    use sea_orm::Order;
    let order = if query.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    let key = match query.sort {
        TaskSort::Name => None,
        TaskSort::Module => Some(C::Module),
        TaskSort::Owner => Some(C::Owner),
    };
    // With a text search, the order is by an expression rather than the column: SQLite would
    // otherwise walk the name index and fetch every row by it (180 ms for 100,000 tasks, five
    // times a plain scan), since it cannot know how few rows the search keeps.
    let order_col = |col: C| -> sea_orm::sea_query::SimpleExpr {
        if query.text.is_some() {
            Expr::cust(format!(
                "scheduled_task.{} || ''",
                sea_orm::IdenStatic::as_str(&col)
            ))
        } else {
            Expr::col((scheduled_task::Entity, col))
        }
    };
    let mut select = ScheduledTask::find();
    if let Some(key) = key {
        select = select.order_by(order_col(key), order.clone());
    }
    let mut select = select
        .order_by(order_col(C::Name), order)
        .limit(query.limit);
    if let Some(module) = &query.module {
        select = select.filter(C::Module.eq(module));
    }
    if let Some(owner) = &query.owner {
        select = select.filter(C::Owner.eq(owner));
    }
    if let Some(enabled) = query.enabled {
        select = select.filter(C::Enabled.eq(enabled));
    }
    if let Some(status) = &query.last_status {
        select = select.filter(C::LastStatus.eq(status));
    }
    if let Some(text) = &query.text {
        select = select.filter(
            sea_orm::Condition::any()
                .add(C::Name.contains(text))
                .add(C::Description.contains(text)),
        );
    }
    if let Some(after) = &query.after {
        let beyond = |col: C, value: &str| {
            if query.descending {
                col.lt(value)
            } else {
                col.gt(value)
            }
        };
        select = select.filter(match (key, &query.after_key) {
            (Some(key), Some(after_key)) => {
                sea_orm::Condition::any().add(beyond(key, after_key)).add(
                    sea_orm::Condition::all()
                        .add(key.eq(after_key.as_str()))
                        .add(beyond(C::Name, after)),
                )
            }
            _ => sea_orm::Condition::all().add(beyond(C::Name, after)),
        });
    }
    let rows = select.all(db).await?;
    let confs = conf_names(db).await?;
    Ok(stored(rows, &confs))
}

/// The module of the tasks every node brings (`cronmesh.prune_runs`): operators cannot add to
/// it or remove from it, or a task they did not mean to touch would silently stop.
pub(crate) const BUILT_IN_MODULE: &str = "cronmesh";

/// Whether a task is one of cronmesh's own (the `cronmesh` module).
pub fn is_built_in(name: &str) -> bool {
    name.split_once('.')
        .is_some_and(|(module, _)| module == BUILT_IN_MODULE)
}
