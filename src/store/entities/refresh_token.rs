//! The `refresh_tokens` table: one row per refresh token ever issued, keyed by
//! the token's hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub scope: String,
    pub grant_scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked: bool,
    /// The access token issued beside this refresh token, revoked with the family.
    pub access_jti: String,
    pub access_expires_at: i64,
    /// The token this one replaced, if it came from a rotation.
    pub parent_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
