//! The resource owner password credentials grant (RFC 6749 §4.3).

use super::super::Core;
use super::super::error::OAuthError;
use super::super::issuance::{
    IssuedTokens, Owner, mint_access, mint_refresh, persist_access, resolve_scope,
};
use super::super::model::{Client, GrantType, UnixTime};
use super::super::storage::Stores;
use super::super::user_auth::{LoginAttempt, authenticate_user};
use crate::tokens::secret::new_family_id;

pub(super) async fn issue<S: Stores>(
    core: &Core<S>,
    client: &Client,
    attempt: LoginAttempt,
    scope: Option<&str>,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    // The scope is checked first: a request the client may not make costs no
    // password work and counts against no account.
    let scope = resolve_scope(client, scope)?;
    let user = authenticate_user(core, &attempt).await?;

    let access = mint_access(core, client, Some(Owner::from(&user)), &scope, now)?;
    let refresh_token = if client.allows(GrantType::RefreshToken) {
        let (value, record) = mint_refresh(core, &new_family_id(now), &scope, &access, now);
        core.store.insert_refresh(&record).await?;
        Some(value)
    } else {
        None
    };
    persist_access(core, &access).await?;
    Ok(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token,
        scope,
    })
}
