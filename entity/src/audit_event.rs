//! `audit_event`: every change made through the API or the CLI, written with the change.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// One change.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// Who: an API token's name, or `cli:<os user>`.
    pub actor: String,
    /// What, such as `task.create`, `task.update`, `cluster.pause`.
    pub action: String,
    /// What it was done to: `task:<name>`, `trigger_conf:<name>`, `cluster`.
    pub target: String,
    /// The target before (JSON), when it existed.
    pub before_json: Option<String>,
    /// The target after (JSON), when it still exists.
    pub after_json: Option<String>,
    /// The reason given, where one is asked for.
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
