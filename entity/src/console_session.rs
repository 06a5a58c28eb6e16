//! `console_session`: a browser signed in to the web console.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

/// One signed-in browser. Only the SHA-256 of its cookie is kept, so a reader of the database
/// cannot take the session over.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "console_session")]
pub struct Model {
    /// Hex SHA-256 of the session cookie's value.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_sha256: String,
    /// The API token it signed in with (its role is read from the settings on every request).
    pub token_name: String,
    /// Hex SHA-256 of the token's configured SHA-256: a token given a new secret under the same
    /// name ends its sessions.
    pub token_fingerprint: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
