//! The `api_keys` table: API keys (SPEC §8), keyed by their id and found by
//! the hash of their value, which is all that is stored of it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub client_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
    pub hint: String,
    pub last_used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
