//! Browser login sessions (SPEC §7), stored by the hash of the cookie's value.
//! Read from the database on each use: logins are rare next to token
//! requests, and a session ended on one replica must end on all at once.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::SeaStore;
use super::entities::session;
use super::retry::retrying;
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
        retrying(|| async {
            let turn = self.write_turn().await;
            session::Entity::insert(row.clone())
                .exec_without_returning(turn.db())
                .await?;
            Ok(())
        })
        .await
    }

    async fn find_session(&self, session_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(session::Entity::find_by_id(session_hash.to_owned())
            .one(self.db())
            .await?
            .map(to_domain))
    }

    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            session::Entity::delete_by_id(session_hash.to_owned())
                .exec(turn.db())
                .await?;
            Ok(())
        })
        .await
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
        retrying(|| async {
            let turn = self.write_turn().await;
            end_sessions_of(turn.db(), user_id).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{UserChange, UserSpec};

    const NOW: i64 = 1_800_000_000;

    async fn store() -> (tempfile::TempDir, SeaStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SeaStore::open(&url, 2, None).await.unwrap();
        (dir, store)
    }

    async fn user(store: &SeaStore, name: &str) -> String {
        let spec = UserSpec {
            username: name.into(),
            email: None,
            phone: None,
            password_hash: "unused".into(),
        };
        store.create_user(spec, NOW).await.unwrap().id
    }

    async fn log_in(store: &SeaStore, user_id: &str, at: i64) {
        let session = SessionRecord {
            session_hash: format!("hash-of-{user_id}-{at}"),
            user_id: user_id.to_owned(),
            created_at: at,
            expires_at: at + 86_400,
        };
        store.insert_session(&session).await.unwrap();
    }

    fn times(sessions: &[SessionRecord]) -> Vec<i64> {
        sessions.iter().map(|session| session.created_at).collect()
    }

    #[tokio::test]
    async fn sessions_of_lists_one_users_sessions_oldest_first_and_end_sessions_ends_them() {
        let (_dir, store) = store().await;
        let ana = user(&store, "ana").await;
        let ben = user(&store, "ben").await;
        log_in(&store, &ana, NOW + 2).await;
        log_in(&store, &ana, NOW + 1).await;
        log_in(&store, &ben, NOW).await;
        assert_eq!(
            times(&store.sessions_of(&ana).await.unwrap()),
            [NOW + 1, NOW + 2]
        );

        assert_eq!(store.end_sessions(&ana).await.unwrap(), 2);
        assert!(store.sessions_of(&ana).await.unwrap().is_empty());
        assert_eq!(store.end_sessions(&ana).await.unwrap(), 0);
        assert_eq!(times(&store.sessions_of(&ben).await.unwrap()), [NOW]);
    }

    // SPEC §7: locking or disabling a user ends their sessions; a new or an
    // expired password does too. The other changes leave them be.
    #[tokio::test]
    async fn locking_disabling_and_a_new_password_end_the_users_sessions() {
        let (_dir, store) = store().await;
        let ana = user(&store, "ana").await;
        let ben = user(&store, "ben").await;
        log_in(&store, &ben, NOW).await;
        for (change, ends) in [
            (UserChange::Unlock, false),
            (UserChange::Enable, false),
            (UserChange::Lock, true),
            (UserChange::Disable, true),
            (UserChange::SetPassword("new hash".into()), true),
            (UserChange::ExpirePassword, true),
        ] {
            log_in(&store, &ana, NOW).await;
            store.change_user("ana", change.clone()).await.unwrap();
            let left = store.sessions_of(&ana).await.unwrap().len();
            assert_eq!(left, usize::from(!ends), "{change:?}");
            store.end_sessions(&ana).await.unwrap();
        }
        assert_eq!(store.sessions_of(&ben).await.unwrap().len(), 1);
    }
}
