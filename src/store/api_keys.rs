//! API keys (SPEC §8): the `ApiKeyStore` the validator asks, answered from
//! memory once a key has been looked up (`remembered.rs`), and the management
//! operations the CLI runs. Every change of a stored key (a revocation, a
//! rotation, its client's deletion) is announced on the API-keys counter, so
//! that every server forgets what it remembered within a second.

use sea_orm::QueryOrder as _;
use sea_orm::{ActiveModelTrait as _, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::SeaStore;
use super::changes::{Announced, ChangeKind};
use super::entities::api_key;
use super::retry::retrying;
use crate::clock;
use crate::oauth::model::{ApiKeyRecord, UnixTime};
use crate::oauth::storage::{ApiKeyStore, StoreError};

/// Seconds a known key is remembered at most. Every change through oauthd
/// moves the counter and is seen within a second; this only bounds how long a
/// change made behind oauthd's back (by hand, in the database) goes unseen.
const KNOWN_KEY_LIFETIME: UnixTime = 300;

/// An API key as management commands show it: everything but its value.
#[derive(Debug, Clone)]
pub struct ApiKeyView {
    /// The key.
    pub record: ApiKeyRecord,
    /// When some server last accepted it (accurate to a minute), if ever.
    pub last_used_at: Option<UnixTime>,
}

fn to_domain(row: api_key::Model) -> Result<ApiKeyView, StoreError> {
    let scope = super::tokens::scope(&row.scope)?;
    Ok(ApiKeyView {
        record: ApiKeyRecord {
            key_id: row.key_id,
            key_hash: row.key_hash,
            client_id: row.client_id,
            name: row.name,
            scope,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked: row.revoked,
            hint: row.hint,
        },
        last_used_at: row.last_used_at,
    })
}

fn new_row(record: &ApiKeyRecord) -> api_key::ActiveModel {
    api_key::ActiveModel {
        key_id: Set(record.key_id.clone()),
        key_hash: Set(record.key_hash.clone()),
        client_id: Set(record.client_id.clone()),
        name: Set(record.name.clone()),
        scope: Set(record.scope.to_string()),
        created_at: Set(record.created_at),
        expires_at: Set(record.expires_at),
        revoked: Set(record.revoked),
        hint: Set(record.hint.clone()),
        last_used_at: Set(None),
    }
}

impl ApiKeyStore for SeaStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let now = clock::now();
        let read = async {
            api_key::Entity::find()
                .filter(api_key::Column::KeyHash.eq(key_hash))
                .one(self.db())
                .await?
                .map(|row| to_domain(row).map(|view| view.record))
                .transpose()
        };
        self.cache()
            .api_keys
            .lookup(key_hash, now, "api_key", read, |_| {
                now.saturating_add(KNOWN_KEY_LIFETIME)
            })
            .await
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let revoked = retrying(|| async {
            let turn = self.write_turn().await;
            let change = Announced::begin(turn.db(), ChangeKind::ApiKeys).await?;
            let revoked = api_key::Entity::update_many()
                .col_expr(api_key::Column::Revoked, true.into())
                .filter(api_key::Column::KeyId.eq(key_id))
                .filter(api_key::Column::Revoked.eq(false))
                .exec(change.txn())
                .await?;
            if revoked.rows_affected == 0 {
                // Unknown, or revoked before: nothing to announce.
                return Ok(false);
            }
            change.commit().await?;
            Ok(true)
        })
        .await?;
        if !revoked {
            return Ok(false);
        }
        // Every server forgets its keys at its next sync; this one at once, so
        // that its own next check refuses the key.
        self.cache().api_keys.forget_all();
        Ok(true)
    }

    fn api_key_used(&self, key_id: &str, now: UnixTime) {
        self.cache().key_usage.note(key_id, now);
    }
}

impl SeaStore {
    /// Stores a new key (only its hash, never its value). Nothing to announce:
    /// no server can remember an answer for a value that nobody has seen yet,
    /// and moving the counter would make every server forget all its keys.
    pub async fn create_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            new_row(record).insert(turn.db()).await?;
            Ok(())
        })
        .await
    }

    /// Every key, or the keys of `client_id`, oldest first.
    pub async fn list_api_keys(
        &self,
        client_id: Option<&str>,
    ) -> Result<Vec<ApiKeyView>, StoreError> {
        let mut query = api_key::Entity::find();
        if let Some(client_id) = client_id {
            query = query.filter(api_key::Column::ClientId.eq(client_id));
        }
        query
            .order_by_asc(api_key::Column::CreatedAt)
            .order_by_asc(api_key::Column::KeyId)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    /// One key.
    pub async fn show_api_key(&self, key_id: &str) -> Result<Option<ApiKeyView>, StoreError> {
        api_key::Entity::find_by_id(key_id.to_owned())
            .one(self.db())
            .await?
            .map(to_domain)
            .transpose()
    }

    /// Stores the rotation of `old` (`oauth::api_keys::rotate_api_key`) in one
    /// transaction: `old` now stops at `old_stops_at`, and `new` is stored.
    /// Returns `false`, with nothing written, when `old` is revoked or changed
    /// since it was read (a concurrent rotation, say).
    pub async fn replace_api_key(
        &self,
        old: &ApiKeyRecord,
        new: &ApiKeyRecord,
        old_stops_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let replaced = retrying(|| async {
            let turn = self.write_turn().await;
            let change = Announced::begin(turn.db(), ChangeKind::ApiKeys).await?;
            // The update comes first, as the condition on what was read: on
            // SQLite a transaction that reads before it writes fails when
            // another process wrote in between.
            let shortened = api_key::Entity::update_many()
                .col_expr(api_key::Column::ExpiresAt, old_stops_at.into())
                .filter(api_key::Column::KeyId.eq(&old.key_id))
                .filter(api_key::Column::Revoked.eq(false))
                .filter(api_key::Column::ExpiresAt.eq(old.expires_at))
                .exec(change.txn())
                .await?;
            if shortened.rows_affected != 1 {
                return Ok(false);
            }
            new_row(new).insert(change.txn()).await?;
            change.commit().await?;
            Ok(true)
        })
        .await?;
        if !replaced {
            return Ok(false);
        }
        self.cache().api_keys.forget_all();
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
