//! Web console sessions: a browser that signed in with an API token. Only the SHA-256 of the
//! cookie is stored; the role is not stored at all, it is read from the settings on every
//! request, so a token removed from the settings (or given a new secret) ends its sessions.

use chrono::{DateTime, Utc};
use entity::console_session;
use entity::prelude::*;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::error::Result;

/// Records a new session, and forgets every session that has expired.
pub async fn create_session(
    db: &DatabaseConnection,
    id_sha256: &str,
    token_name: &str,
    token_fingerprint: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    ConsoleSession::delete_many()
        .filter(console_session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    ConsoleSession::insert(console_session::ActiveModel {
        id_sha256: Set(id_sha256.to_owned()),
        token_name: Set(token_name.to_owned()),
        token_fingerprint: Set(token_fingerprint.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// The session with this cookie hash, if it exists and has not expired at `now`.
pub async fn find_session(
    db: &DatabaseConnection,
    id_sha256: &str,
    now: DateTime<Utc>,
) -> Result<Option<console_session::Model>> {
    Ok(ConsoleSession::find_by_id(id_sha256.to_owned())
        .one(db)
        .await?
        .filter(|s| s.expires_at > now))
}

/// Ends a session (signing out). Ending one that is not there is not an error.
pub async fn end_session(db: &DatabaseConnection, id_sha256: &str) -> Result<()> {
    ConsoleSession::delete_by_id(id_sha256.to_owned())
        .exec(db)
        .await?;
    Ok(())
}
