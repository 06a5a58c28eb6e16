//! Reading task rows for the scheduler: page by page, each distinct trigger parsed once,
//! every row validated like a declaration and split into what this node can run and what it
//! cannot (orphaned, handler not here, invalid), with the reason. Every task is read by its
//! scheduling columns ([`store::ScheduleRow`]) into a [`Timing`], shared by the tasks that
//! schedule alike; the whole row, and with it the task's spec, is read only for a task about
//! to fire (`specs`).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scheduler_core::{MisfirePolicy, OverlapPolicy, TaskDecl, TaskSpec, Trigger, validate_name};
use sea_orm::DatabaseConnection;
use store::{ChangeMark, ScheduleRow, StoredTask};

use crate::tasks::TaskHandler;

/// The tasks read at start-up, before the actor starts (so a broken database stops the node
/// before it claims to run).
pub(crate) struct InitialTasks {
    pub(super) tasks: TaskRows,
    pub(super) mark: ChangeMark,
}

impl InitialTasks {
    /// Reads every task row (page by page) and the change mark they were read at.
    pub(crate) async fn read(
        db: &DatabaseConnection,
        handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    ) -> store::Result<Self> {
        // The mark first: a change made while the pages are read moves the mark past it, and
        // the next reconcile reads again.
        let mark = store::change_mark(db).await?;
        let tasks = read_task_rows(db, handlers).await?;
        Ok(InitialTasks { tasks, mark })
    }
}

/// What scheduling a task needs: when it fires, and what to do with a fire found late.
/// Tasks that schedule alike share one.
#[derive(Debug, PartialEq)]
pub(crate) struct Timing {
    pub(crate) trigger: Trigger,
    pub(crate) misfire: MisfirePolicy,
    pub(crate) misfire_grace: Duration,
    pub(crate) overlap: OverlapPolicy,
    pub(crate) enabled: bool,
}

impl Timing {
    fn of(spec: &TaskSpec) -> Self {
        Timing {
            trigger: spec.trigger.clone(),
            misfire: spec.misfire,
            misfire_grace: spec.misfire_grace,
            overlap: spec.overlap,
            enabled: spec.enabled,
        }
    }
}

/// What the scheduler keeps of a task row besides its timing and spec.
pub(super) struct RowMeta {
    pub(super) id: i64,
    pub(super) version: i64,
    pub(super) run_now_at: Option<DateTime<Utc>>,
    pub(super) last_run_at: Option<DateTime<Utc>>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) next_run_at: Option<DateTime<Utc>>,
}

/// A runnable task row, as the scheduler takes it.
pub(super) struct ReadTask {
    pub(super) meta: RowMeta,
    pub(super) name: Arc<str>,
    pub(super) timing: Arc<Timing>,
    /// The whole validated spec, when the whole row was read.
    pub(super) spec: Option<Arc<TaskSpec>>,
}

/// A row this node does not run, and why.
pub(super) struct Skipped {
    pub(super) name: String,
    pub(super) version: i64,
    pub(super) why: String,
}

/// Stored tasks split into what this node can run and what it cannot (with the reason).
#[derive(Default)]
pub(super) struct TaskRows {
    /// Page by page, so applying them frees each page's buffer as it goes.
    pub(super) pages: Vec<Vec<ReadTask>>,
    /// Rows this node does not run, with the reason.
    pub(super) skipped: Vec<Skipped>,
}

impl TaskRows {
    pub(super) fn len(&self) -> usize {
        self.pages.iter().map(Vec::len).sum()
    }
}

/// Rows read per page.
const TASK_PAGE: u64 = 5000;
/// Distinct triggers (and timings) kept while reading.
const TRIGGER_CACHE_MAX: usize = 10_000;

/// Every task row's scheduling columns, validated page by page: one page of rows is in
/// memory at a time (the next is read while this one is validated), and each distinct
/// trigger is parsed once (a million tasks tend to share a few hundred).
pub(super) async fn read_task_rows(
    db: &DatabaseConnection,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
) -> store::Result<TaskRows> {
    let conf_names = store::conf_names(db).await?;
    let confs = store::trigger_confs(db).await?;
    let mut triggers = TriggerCache::new(&confs);
    let mut out = TaskRows::default();
    let mut page = store::load_schedule_page(db, &conf_names, 0, TASK_PAGE).await?;
    loop {
        let full = page.len() as u64 == TASK_PAGE;
        let next = match page.last() {
            Some(last) if full => Some(store::load_schedule_page(
                db,
                &conf_names,
                last.id,
                TASK_PAGE,
            )),
            _ => None,
        };
        let mut tasks = Vec::with_capacity(page.len());
        let validate = async {
            validate_rows(page, &mut triggers, handlers, &mut tasks, &mut out.skipped);
        };
        let Some(next) = next else {
            validate.await;
            out.pages.push(tasks);
            break;
        };
        // The database works on the next page while this one is validated.
        let (next, ()) = futures_util::future::join(next, validate).await;
        out.pages.push(tasks);
        page = next?;
    }
    Ok(out)
}

/// The whole rows with these ids, validated, each with its spec: the specs of idle tasks
/// about to fire. Rows no longer runnable here are in `skipped`; rows gone are in neither.
pub(super) async fn read_tasks_by_id(
    db: &DatabaseConnection,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    ids: &[i64],
) -> store::Result<TaskRows> {
    let conf_names = store::conf_names(db).await?;
    let confs = store::trigger_confs(db).await?;
    let mut triggers = TriggerCache::new(&confs);
    let rows = store::load_tasks_by_ids(db, &conf_names, ids).await?;
    let mut out = TaskRows::default();
    let mut tasks = Vec::with_capacity(rows.len());
    validate_rows(rows, &mut triggers, handlers, &mut tasks, &mut out.skipped);
    out.pages.push(tasks);
    Ok(out)
}

/// A task row as read: its scheduling columns, or the whole row.
trait TaskRow {
    fn name(&self) -> &str;
    fn orphaned(&self) -> bool;
    fn handler(&self) -> &str;
    fn conf_name(&self) -> Option<&str>;
    fn trigger_json(&self) -> Option<&str>;
    fn decl(&self) -> TaskDecl;
    fn meta(&self) -> RowMeta;
    /// The row, when it is one of scheduling columns (`None`: the whole row, which makes a
    /// spec).
    fn as_schedule_row(&self) -> Option<&ScheduleRow> {
        None
    }
}

/// What a row of scheduling columns holds besides its name: rows alike in all of it are
/// valid alike, but for the name (a million generated tasks tend to share a few shapes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shape<'a> {
    conf: Option<&'a str>,
    json: Option<&'a str>,
    handler: &'a str,
    enabled: bool,
    misfire: &'a str,
    misfire_grace_ms: i64,
    overlap: &'a str,
    timeout_ms: Option<i64>,
    lock_ttl_ms: i64,
}

/// The shape of a row of scheduling columns.
fn shape_of(row: &ScheduleRow) -> Shape<'_> {
    Shape {
        conf: row.conf_name.as_deref(),
        json: row.trigger_json.as_deref(),
        handler: &row.handler,
        enabled: row.enabled,
        misfire: &row.misfire,
        misfire_grace_ms: row.misfire_grace_ms,
        overlap: &row.overlap,
        timeout_ms: row.timeout_ms,
        lock_ttl_ms: row.lock_ttl_ms,
    }
}

impl TaskRow for ScheduleRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn orphaned(&self) -> bool {
        self.orphaned
    }
    fn handler(&self) -> &str {
        &self.handler
    }
    fn conf_name(&self) -> Option<&str> {
        self.conf_name.as_deref()
    }
    fn trigger_json(&self) -> Option<&str> {
        self.trigger_json.as_deref()
    }
    fn decl(&self) -> TaskDecl {
        ScheduleRow::decl(self)
    }
    fn as_schedule_row(&self) -> Option<&ScheduleRow> {
        Some(self)
    }
    fn meta(&self) -> RowMeta {
        RowMeta {
            id: self.id,
            version: self.version,
            run_now_at: self.run_now_at,
            last_run_at: self.last_run_at,
            updated_at: self.updated_at,
            next_run_at: self.next_run_at,
        }
    }
}

impl TaskRow for StoredTask {
    fn name(&self) -> &str {
        &self.row.name
    }
    fn orphaned(&self) -> bool {
        self.row.orphaned
    }
    fn handler(&self) -> &str {
        &self.row.handler
    }
    fn conf_name(&self) -> Option<&str> {
        self.conf_name.as_deref()
    }
    fn trigger_json(&self) -> Option<&str> {
        self.row.trigger_json.as_deref()
    }
    fn decl(&self) -> TaskDecl {
        StoredTask::decl(self)
    }
    fn meta(&self) -> RowMeta {
        let r = &self.row;
        RowMeta {
            id: r.id,
            version: r.version,
            run_now_at: r.run_now_at,
            last_run_at: r.last_run_at,
            updated_at: r.updated_at,
            next_run_at: r.next_run_at,
        }
    }
}

/// Where a row's trigger is stored: the key its timing is shared by.
#[derive(Clone, Copy)]
enum TriggerKey<'a> {
    Conf(&'a str),
    Json(&'a str),
}

/// Parsed triggers by their JSON, the shared trigger confs by name, and the timings handed
/// out so far (by trigger, then by policies).
struct TriggerCache {
    confs: HashMap<String, Trigger>,
    parsed: HashMap<String, Trigger>,
    timings_by_conf: HashMap<String, Vec<Arc<Timing>>>,
    timings_by_json: HashMap<String, Vec<Arc<Timing>>>,
    timings: usize,
    /// Shapes that validated, with their timing: by the shape's hash, then a row of that
    /// shape to compare with.
    shapes: HashMap<u64, Vec<(ScheduleRow, Arc<Timing>)>>,
    shape_hasher: hashbrown::DefaultHashBuilder,
}

impl TriggerCache {
    /// The timing of `spec`, shared with every task read before whose trigger is stored the
    /// same way and whose policies are the same.
    fn timing(&mut self, key: Option<TriggerKey<'_>>, spec: &TaskSpec) -> Arc<Timing> {
        let timing = Timing::of(spec);
        let (map, key) = match key {
            Some(TriggerKey::Conf(k)) => (&mut self.timings_by_conf, k),
            Some(TriggerKey::Json(k)) => (&mut self.timings_by_json, k),
            None => return Arc::new(timing),
        };
        if let Some(same) = map.get(key).and_then(|v| v.iter().find(|t| ***t == timing)) {
            return same.clone();
        }
        let timing = Arc::new(timing);
        // Bounded: a million distinct date triggers would share nothing.
        if self.timings < TRIGGER_CACHE_MAX {
            self.timings += 1;
            map.entry(key.to_owned()).or_default().push(timing.clone());
        }
        timing
    }

    /// The timing of a shape that validated before.
    fn known_shape(&self, shape: &Shape<'_>) -> Option<Arc<Timing>> {
        let hash = self.shape_hasher.hash_one(shape);
        let alike = self.shapes.get(&hash)?;
        alike
            .iter()
            .find(|(row, _)| shape_of(row) == *shape)
            .map(|(_, timing)| timing.clone())
    }

    /// Remembers that rows of this row's shape validate, to this timing.
    fn remember_shape(&mut self, row: &ScheduleRow, timing: &Arc<Timing>) {
        if self.timings >= TRIGGER_CACHE_MAX {
            return;
        }
        self.timings += 1;
        let hash = self.shape_hasher.hash_one(shape_of(row));
        self.shapes
            .entry(hash)
            .or_default()
            .push((row.clone(), timing.clone()));
    }

    fn new(confs: &[(String, String)]) -> Self {
        TriggerCache {
            confs: confs
                .iter()
                .filter_map(|(n, j)| Trigger::from_json(j).ok().map(|t| (n.clone(), t)))
                .collect(),
            parsed: HashMap::new(),
            timings_by_conf: HashMap::new(),
            timings_by_json: HashMap::new(),
            timings: 0,
            shapes: HashMap::new(),
            shape_hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }
}

/// Validates stored rows and splits them into what this node can run and what it cannot
/// Validates rows and splits them into what this node can run and what it cannot (with the
/// reason).
fn validate_rows<R: TaskRow>(
    rows: Vec<R>,
    triggers: &mut TriggerCache,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    tasks: &mut Vec<ReadTask>,
    skipped: &mut Vec<Skipped>,
) {
    for row in rows {
        let skip = |why: String| Skipped {
            name: row.name().to_owned(),
            version: row.meta().version,
            why,
        };
        if row.orphaned() {
            skipped.push(skip(
                "orphaned: its handler is not in any running binary".to_owned(),
            ));
            continue;
        }
        if !handlers.contains_key(row.handler()) {
            skipped.push(skip(format!(
                "handler {:?} is not available on this node",
                row.handler()
            )));
            continue;
        }
        // A shape that validated before needs only its name checked.
        if let Some(lean) = row.as_schedule_row()
            && let Some(timing) = triggers.known_shape(&shape_of(lean))
            && validate_name(row.name()).is_ok()
        {
            tasks.push(ReadTask {
                meta: row.meta(),
                name: Arc::from(row.name()),
                timing,
                spec: None,
            });
            continue;
        }
        let decl = row.decl();
        // A trigger seen before is not parsed again.
        let cached = match (row.conf_name(), row.trigger_json()) {
            (None, Some(json)) => match triggers.parsed.get(json) {
                Some(t) => Some(t.clone()),
                None => match Trigger::from_json(json) {
                    Ok(t) => {
                        // Bounded: a million distinct date triggers would gain nothing here.
                        if triggers.parsed.len() < TRIGGER_CACHE_MAX {
                            triggers.parsed.insert(json.to_owned(), t.clone());
                        }
                        Some(t)
                    }
                    Err(_) => None, // validation below reports it
                },
            },
            _ => None,
        };
        let validated = match cached {
            Some(trigger) => decl.validate_parsed(trigger),
            None => decl.validate(|n| triggers.confs.get(n).cloned()),
        };
        match validated {
            Ok(spec) => {
                let trigger_key = match (row.conf_name(), row.trigger_json()) {
                    (Some(conf), _) => Some(TriggerKey::Conf(conf)),
                    (None, json) => json.map(TriggerKey::Json),
                };
                let timing = triggers.timing(trigger_key, &spec);
                if let Some(row) = row.as_schedule_row() {
                    triggers.remember_shape(row, &timing);
                }
                tasks.push(ReadTask {
                    meta: row.meta(),
                    name: Arc::from(spec.name.as_str()),
                    timing,
                    spec: row.as_schedule_row().is_none().then(|| Arc::new(spec)),
                })
            }
            Err(errors) => skipped.push(skip(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}
