//! The `clients` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret; NULL for public clients.
    pub secret_hash: Option<String>,
    /// Space-separated grant types.
    pub grant_types: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub access_token_ttl: Option<i64>,
    pub enabled: bool,
    pub created_at: i64,
    /// Space-separated registered redirect URIs (SPEC §7).
    pub redirect_uris: String,
    pub skip_consent: bool,
    /// `required` or `optional`.
    pub pkce: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
