//! Browser login sessions (SPEC §7), stored by the hash of the cookie's value.
//! Read from the database on each use: logins are rare next to token
//! requests, and a session ended on one replica must end on all at once.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::SeaStore;
use super::entities::session;
use crate::oauth::model::SessionRecord;
use crate::oauth::storage::{SessionStore, StoreError};

fn to_domain(row: session::Model) -> SessionRecord {
    SessionRecord {
        session_hash: row.session_hash,
        user_id: row.user_id,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

/// Ends every session of `user_id`, inside the caller's transaction: locking,
/// disabling or deleting a user ends their sessions with the same commit.
pub(super) async fn end_sessions_of(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<u64, StoreError> {
    let deleted = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

impl SessionStore for SeaStore {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let row = session::ActiveModel {
            session_hash: Set(session.session_hash.clone()),
            user_id: Set(session.user_id.clone()),
            created_at: Set(session.created_at),
            expires_at: Set(session.expires_at),
        };
        let turn = self.write_turn().await;
        session::Entity::insert(row)
            .exec_without_returning(turn.db())
            .await?;
        Ok(())
    }

    async fn find_session(&self, session_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(session::Entity::find_by_id(session_hash.to_owned())
            .one(self.db())
            .await?
            .map(to_domain))
    }

    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        let turn = self.write_turn().await;
        session::Entity::delete_by_id(session_hash.to_owned())
            .exec(turn.db())
            .await?;
        Ok(())
    }
}

impl SeaStore {
    /// The sessions of `user_id`, oldest first, for `user sessions`.
    pub async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .order_by_asc(session::Column::CreatedAt)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_domain)
            .collect())
    }

    /// Ends every session of `user_id` (`user logout`); returns how many.
    pub async fn end_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let turn = self.write_turn().await;
        end_sessions_of(turn.db(), user_id).await
    }
}
