//! The `authorization_codes` table (SPEC §7).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub(crate) struct Model {
    /// SHA-256 of the `oac_` code.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    /// The user's login name, which the tokens carry.
    pub username: String,
    /// The `redirect_uri` the authorize request carried, if it carried one.
    pub redirect_uri: Option<String>,
    /// Space-separated granted scope.
    pub scope: String,
    /// The S256 `code_challenge`, if any.
    pub code_challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The refresh-token family its redemption started.
    pub family_id: Option<String>,
    /// The access token its redemption issued.
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
    /// The refresh token its redemption issued; on SQLite a trigger stores
    /// it from this row.
    pub refresh_hash: Option<String>,
    pub refresh_expires_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
