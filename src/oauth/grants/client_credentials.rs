//! The client credentials grant (RFC 6749 §4.4).
//!
//! Hot path: no database write and no slow hash. The client comes from memory,
//! its secret was checked with SHA-256, and a JWT needs only a signature.
//! (An opaque token is the exception: it has to be stored.)

use super::super::Core;
use super::super::error::OAuthError;
use super::super::issuance::{IssuedTokens, mint_access, persist_access, resolve_scope};
use super::super::model::{Client, GrantType, UnixTime};
use super::super::storage::Stores;

pub(super) async fn issue<S: Stores>(
    core: &Core<S>,
    client: &Client,
    scope: Option<&str>,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    // RFC 6749 §4.4: "The client credentials grant type MUST only be used by
    // confidential clients."
    if client.is_public() {
        return Err(OAuthError::grant_not_allowed(
            GrantType::ClientCredentials.as_str(),
        ));
    }
    let scope = resolve_scope(client, scope)?;
    let access = mint_access(core, client, None, &scope, now)?;
    persist_access(core, &access).await?;
    Ok(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token: None,
        scope,
    })
}
