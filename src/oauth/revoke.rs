//! Token revocation (RFC 7009).

use super::Core;
use super::client_auth::{ClientCredentials, authenticate};
use super::error::OAuthError;
use super::introspect::{REFRESH_TOKEN, issued_here, verify_jwt};
use super::model::UnixTime;
use super::storage::Stores;
use crate::tokens::opaque::looks_like_jwt;
use crate::tokens::secret::hash_secret;

/// Revokes `token` for the authenticated caller.
///
/// RFC 7009 §2.2: an invalid or unknown token is not an error ("the client cannot
/// handle such an error in a reasonable way"). A token of another client is
/// refused (§2.1: the server "verifies whether the token was issued to the client
/// making the revocation request. If this validation fails, the request is
/// refused"). Revoking a refresh token revokes its whole family and the access
/// tokens issued with it. An access token of another issuer or audience counts
/// as unknown, as introspection reports it inactive.
pub async fn revoke<S: Stores>(
    core: &Core<S>,
    caller: &ClientCredentials,
    token: &str,
    token_type_hint: Option<&str>,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let client = authenticate(&core.store, caller).await?;
    if token.is_empty() {
        return Err(OAuthError::missing_parameter("token"));
    }
    let check_owner = |owner: &str| {
        if owner == client.id {
            Ok(())
        } else {
            Err(OAuthError::UnauthorizedClient(
                "The token was not issued to this client".into(),
            ))
        }
    };
    if looks_like_jwt(token) {
        if let Some(claims) = verify_jwt(core, token).await {
            check_owner(&claims.client_id)?;
            core.store.revoke_access(&claims.jti, claims.exp).await?;
        }
        return Ok(());
    }
    let hash = hash_secret(token);
    let refresh_first = token_type_hint == Some(REFRESH_TOKEN);
    if !refresh_first && let Some(record) = core.store.find_opaque(&hash).await? {
        if !issued_here(core, &record.claims.iss, &record.claims.aud) {
            return Ok(());
        }
        check_owner(&record.claims.client_id)?;
        return Ok(core
            .store
            .revoke_access(&record.claims.jti, record.claims.exp)
            .await?);
    }
    if let Some(record) = core.store.find_refresh(&hash).await? {
        check_owner(&record.client_id)?;
        return Ok(core.store.revoke_family(&record.family_id, now).await?);
    }
    if refresh_first && let Some(record) = core.store.find_opaque(&hash).await? {
        if !issued_here(core, &record.claims.iss, &record.claims.aud) {
            return Ok(());
        }
        check_owner(&record.claims.client_id)?;
        return Ok(core
            .store
            .revoke_access(&record.claims.jti, record.claims.exp)
            .await?);
    }
    Ok(())
}
