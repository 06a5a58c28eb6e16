//! A task's status fields (`next_run_at`, `last_run_at`, `last_status`): what operators read
//! in `tasks list`. They are not configuration, so writing them never moves `version`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::scheduled_task::Column as T;
use entity::task_run::RunStatus;
use sea_orm::{DatabaseConnection, IdenStatic};

use crate::batch::{Field, update_from_values};
use crate::error::Result;

/// A task's status fields after a fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Task.
    pub task_name: Arc<str>,
    /// Fire time of the last fire processed.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Its status.
    pub last_status: Option<RunStatus>,
    /// The next fire, when it changed (`Some(None)`: there is none).
    pub next_run_at: Option<Option<DateTime<Utc>>>,
}

/// `set_next` says whether `next_run_at` is to be written at all (a NULL next fire is a
/// value: the task has none).
const SET_NEXT: &str = "set_next";

fn state_fields<'a>() -> [Field<&'a TaskState>; 5] {
    [
        Field::new(T::Name.as_str(), |s| s.task_name.as_ref().into()),
        Field::new(SET_NEXT, |s| s.next_run_at.is_some().into()),
        Field::new(T::NextRunAt.as_str(), |s| s.next_run_at.flatten().into()),
        Field::new(T::LastRunAt.as_str(), |s| s.last_run_at.into()),
        Field::new(T::LastStatus.as_str(), |s| {
            s.last_status.map(RunStatus::as_str).into()
        }),
    ]
}

/// Writes task status fields, one statement per chunk. A field a state leaves out keeps its
/// stored value.
pub async fn update_task_states(db: &DatabaseConnection, states: &[TaskState]) -> Result<()> {
    let states: Vec<&TaskState> = states
        .iter()
        .filter(|s| s.next_run_at.is_some() || s.last_run_at.is_some() || s.last_status.is_some())
        .collect();
    let update = format!(
        "UPDATE scheduled_task SET \
         {next} = CASE WHEN v.{SET_NEXT} THEN v.{next} ELSE scheduled_task.{next} END, \
         {last} = COALESCE(v.{last}, scheduled_task.{last}), \
         {status} = COALESCE(v.{status}, scheduled_task.{status}) \
         FROM v WHERE scheduled_task.{name} = v.{name}",
        next = T::NextRunAt.as_str(),
        last = T::LastRunAt.as_str(),
        status = T::LastStatus.as_str(),
        name = T::Name.as_str(),
    );
    update_from_values(db, &states, &state_fields(), &update).await?;
    Ok(())
}
