//! `cluster_state`: one row, the cluster-wide pause.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// The cluster's state (the row with id 1).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cluster_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// While true no task fires on any node.
    pub paused: bool,
    /// Why it was paused (or resumed).
    pub reason: Option<String>,
    pub changed_at: DateTimeUtc,
    /// Who changed it last.
    pub changed_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
