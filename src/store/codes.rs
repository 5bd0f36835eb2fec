//! Authorization codes (SPEC §7): stored by hash, redeemed once.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::SeaStore;
use super::entities::{authorization_code, refresh_token};
use super::tokens::{refresh_row, scope};
use crate::oauth::model::{AuthorizationCodeRecord, CodeRedemption, NewRefreshToken, UnixTime};
use crate::oauth::storage::{AuthorizationCodeStore, StoreError};

fn to_domain(row: authorization_code::Model) -> Result<AuthorizationCodeRecord, StoreError> {
    let issued = row.access_jti.map(|access_jti| CodeRedemption {
        access_jti,
        access_expires_at: row.access_expires_at.unwrap_or(row.expires_at),
        family_id: row.family_id,
    });
    Ok(AuthorizationCodeRecord {
        scope: scope(&row.scope)?,
        code_hash: row.code_hash,
        client_id: row.client_id,
        user_id: row.user_id,
        username: row.username,
        redirect_uri: row.redirect_uri,
        code_challenge: row.code_challenge,
        issued_at: row.created_at,
        expires_at: row.expires_at,
        used_at: row.used_at,
        issued,
    })
}

impl AuthorizationCodeStore for SeaStore {
    async fn insert_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError> {
        let row = authorization_code::ActiveModel {
            code_hash: Set(code.code_hash.clone()),
            client_id: Set(code.client_id.clone()),
            user_id: Set(code.user_id.clone()),
            username: Set(code.username.clone()),
            redirect_uri: Set(code.redirect_uri.clone()),
            scope: Set(code.scope.to_string()),
            code_challenge: Set(code.code_challenge.clone()),
            created_at: Set(code.issued_at),
            expires_at: Set(code.expires_at),
            used_at: Set(None),
            family_id: Set(None),
            access_jti: Set(None),
            access_expires_at: Set(None),
        };
        let turn = self.write_turn().await;
        authorization_code::Entity::insert(row)
            .exec_without_returning(turn.db())
            .await?;
        Ok(())
    }

    async fn find_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        authorization_code::Entity::find_by_id(code_hash.to_owned())
            .one(self.db())
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        issued: &CodeRedemption,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<bool, StoreError> {
        let turn = self.write_turn().await;
        let txn = turn.db().begin().await?;
        // Single use is this one conditional UPDATE, as for refresh tokens:
        // of any number of concurrent redemptions, on any number of replicas,
        // exactly one sees a row affected.
        let marked = authorization_code::Entity::update_many()
            .col_expr(authorization_code::Column::UsedAt, Some(now).into())
            .col_expr(
                authorization_code::Column::AccessJti,
                Some(issued.access_jti.clone()).into(),
            )
            .col_expr(
                authorization_code::Column::AccessExpiresAt,
                Some(issued.access_expires_at).into(),
            )
            .col_expr(
                authorization_code::Column::FamilyId,
                issued.family_id.clone().into(),
            )
            .filter(authorization_code::Column::CodeHash.eq(code_hash))
            .filter(authorization_code::Column::UsedAt.is_null())
            .filter(authorization_code::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            return Ok(false);
        }
        if let Some(token) = refresh {
            refresh_token::Entity::insert(refresh_row(token, None))
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(true)
    }
}
