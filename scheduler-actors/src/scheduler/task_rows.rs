//! Reading task rows for the scheduler: page by page, each distinct trigger parsed once,
//! every row validated like a declaration and split into what this node can run and what it
//! cannot (orphaned, handler not here, invalid), with the reason.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scheduler_core::{TaskSpec, Trigger};
use sea_orm::DatabaseConnection;
use store::{ChangeMark, StoredTask};

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

/// What the scheduler keeps of a task row besides its validated spec.
pub(super) struct RowMeta {
    pub(super) id: i64,
    pub(super) version: i64,
    pub(super) run_now_at: Option<DateTime<Utc>>,
    pub(super) last_run_at: Option<DateTime<Utc>>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) next_run_at: Option<DateTime<Utc>>,
}

/// Stored tasks split into what this node can run and what it cannot (with the reason).
#[derive(Default)]
pub(super) struct TaskRows {
    /// Page by page, so applying them frees each page's buffer as it goes.
    pub(super) pages: Vec<Vec<(RowMeta, Arc<TaskSpec>)>>,
    /// Rows this node does not run, with the reason.
    pub(super) skipped: Vec<(String, String)>,
}

impl TaskRows {
    pub(super) fn len(&self) -> usize {
        self.pages.iter().map(Vec::len).sum()
    }
}

/// Rows read per page.
const TASK_PAGE: u64 = 5000;
/// Distinct triggers kept parsed while reading.
const TRIGGER_CACHE_MAX: usize = 10_000;

/// Every task row, validated page by page: only one page of full rows is in memory at a time,
/// and each distinct trigger is parsed once (a million tasks tend to share a few hundred).
pub(super) async fn read_task_rows(
    db: &DatabaseConnection,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
) -> store::Result<TaskRows> {
    let conf_names = store::conf_names(db).await?;
    let confs = store::trigger_confs(db).await?;
    let mut triggers = TriggerCache::new(&confs);
    let mut out = TaskRows::default();
    let mut after_id = 0;
    loop {
        let page = store::load_task_page(db, &conf_names, after_id, TASK_PAGE).await?;
        let Some(last) = page.last() else { break };
        after_id = last.row.id;
        let full = page.len() as u64 == TASK_PAGE;
        let mut tasks = Vec::with_capacity(page.len());
        validate_rows(page, &mut triggers, handlers, &mut tasks, &mut out.skipped);
        out.pages.push(tasks);
        if !full {
            break;
        }
    }
    Ok(out)
}

/// Parsed triggers by their JSON, and the shared trigger confs by name.
struct TriggerCache {
    confs: HashMap<String, Trigger>,
    parsed: HashMap<String, Trigger>,
}

impl TriggerCache {
    fn new(confs: &[(String, String)]) -> Self {
        TriggerCache {
            confs: confs
                .iter()
                .filter_map(|(n, j)| Trigger::from_json(j).ok().map(|t| (n.clone(), t)))
                .collect(),
            parsed: HashMap::new(),
        }
    }
}

/// Validates stored rows and splits them into what this node can run and what it cannot
/// (with the reason).
fn validate_rows(
    rows: Vec<StoredTask>,
    triggers: &mut TriggerCache,
    handlers: &HashMap<String, Arc<dyn TaskHandler>>,
    tasks: &mut Vec<(RowMeta, Arc<TaskSpec>)>,
    skipped: &mut Vec<(String, String)>,
) {
    for row in rows {
        let r = &row.row;
        if r.orphaned {
            skipped.push((
                r.name.clone(),
                "orphaned: its handler is not in any running binary".to_owned(),
            ));
            continue;
        }
        if !handlers.contains_key(&r.handler) {
            skipped.push((
                r.name.clone(),
                format!("handler {:?} is not available on this node", r.handler),
            ));
            continue;
        }
        let decl = row.decl();
        // A trigger seen before is not parsed again.
        let cached = match (&row.conf_name, &r.trigger_json) {
            (None, Some(json)) => match triggers.parsed.get(json) {
                Some(t) => Some(t.clone()),
                None => match Trigger::from_json(json) {
                    Ok(t) => {
                        // Bounded: a million distinct date triggers would gain nothing here.
                        if triggers.parsed.len() < TRIGGER_CACHE_MAX {
                            triggers.parsed.insert(json.clone(), t.clone());
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
            Ok(spec) => tasks.push((
                RowMeta {
                    id: r.id,
                    version: r.version,
                    run_now_at: r.run_now_at,
                    last_run_at: r.last_run_at,
                    updated_at: r.updated_at,
                    next_run_at: r.next_run_at,
                },
                Arc::new(spec),
            )),
            Err(errors) => skipped.push((
                r.name.clone(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}
