//! `trigger_conf`: shared named triggers that many tasks can use.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// A shared trigger.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "trigger_conf")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unique name tasks refer to.
    #[sea_orm(unique)]
    pub name: String,
    /// The trigger in its canonical JSON form.
    pub trigger_json: String,
    pub description: String,
    /// Bumped on every change, so nodes can tell what they have not applied yet.
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::scheduled_task::Entity")]
    ScheduledTask,
}

impl Related<super::scheduled_task::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ScheduledTask.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
