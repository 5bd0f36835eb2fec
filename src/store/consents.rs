//! Remembered consent (SPEC §7): per user and client, the scopes approved.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::SeaStore;
use super::entities::consent;
use super::retry::retrying;
use super::tokens::scope;
use crate::oauth::model::UnixTime;
use crate::oauth::scope::ScopeSet;
use crate::oauth::storage::{ConsentStore, StoreError};

impl ConsentStore for SeaStore {
    async fn consented_scope(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ScopeSet>, StoreError> {
        consent::Entity::find_by_id((user_id.to_owned(), client_id.to_owned()))
            .one(self.db())
            .await?
            .map(|row| scope(&row.scope))
            .transpose()
    }

    async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        approved: &ScopeSet,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let row = consent::ActiveModel {
            user_id: Set(user_id.to_owned()),
            client_id: Set(client_id.to_owned()),
            scope: Set(approved.to_string()),
            updated_at: Set(now),
        };
        retrying(|| async {
            let turn = self.write_turn().await;
            consent::Entity::insert(row.clone())
                .on_conflict(
                    OnConflict::columns([consent::Column::UserId, consent::Column::ClientId])
                        .update_columns([consent::Column::Scope, consent::Column::UpdatedAt])
                        .to_owned(),
                )
                .exec_without_returning(turn.db())
                .await?;
            Ok(())
        })
        .await
    }
}

impl SeaStore {
    /// Forgets what `user_id` approved, for one client or for all
    /// (`user revoke-consent`); returns how many clients' consents went.
    pub async fn forget_consent(
        &self,
        user_id: &str,
        client_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut delete = consent::Entity::delete_many().filter(consent::Column::UserId.eq(user_id));
        if let Some(client_id) = client_id {
            delete = delete.filter(consent::Column::ClientId.eq(client_id));
        }
        retrying(|| async {
            let turn = self.write_turn().await;
            Ok(delete.clone().exec(turn.db()).await?.rows_affected)
        })
        .await
    }
}
