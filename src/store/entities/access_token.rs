//! The `access_tokens` table: opaque access tokens, keyed by the token's hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_tokens")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    #[sea_orm(unique)]
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub scope: String,
    pub issuer: String,
    pub audience: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
