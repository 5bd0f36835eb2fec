//! Token revocation (RFC 7009).

use super::Core;
use super::client_auth::{ClientCredentials, authenticate};
use super::error::OAuthError;
use super::model::UnixTime;
use super::storage::{StoreError, Stores};
use super::validate::{Found, find};

/// Revokes `token` for the authenticated caller.
///
/// RFC 7009 §2.2: an invalid or unknown token is not an error ("the client cannot
/// handle such an error in a reasonable way"). A token of another client is
/// refused (§2.1: the server "verifies whether the token was issued to the client
/// making the revocation request. If this validation fails, the request is
/// refused"). Revoking a refresh token revokes its whole family and the access
/// tokens issued with it; revoking an API key stops the key. An access token of another issuer or audience counts
/// as unknown, as introspection reports it inactive. Revocations that write count against the client's
/// [`RevocationLimit`](super::revocation_limit::RevocationLimit); past it the
/// request gets `temporarily_unavailable`, which RFC 7009 §2.2.1 allows ("the
/// client must assume the token still exists and may retry after a reasonable
/// delay").
pub(crate) async fn revoke<S: Stores>(
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
            Err(OAuthError::token_of_another_client())
        }
    };
    match find(core, token, token_type_hint).await? {
        None => Ok(()),
        Some(Found::Access(claims)) => {
            check_owner(&claims.client_id)?;
            revoke_access(core, &client.id, &claims.jti, claims.exp, now).await
        }
        Some(Found::Refresh(record)) => {
            check_owner(&record.client_id)?;
            revoke_family(core, &client.id, &record.family_id, record.revoked, now).await
        }
        Some(Found::ApiKey(record)) => {
            // A client may revoke its own leaked key as it revokes a token;
            // `apikey revoke` is the operator's way.
            check_owner(&record.client_id)?;
            if record.revoked || record.expires_at <= now {
                return Ok(());
            }
            core.revocation_limit.take(&client.id, now)?;
            let written = core.store.revoke_api_key(&record.key_id).await;
            counted(core, &client.id, now, written)
        }
    }
}

/// Revokes one access token, within the client's bound on revocations. A
/// token this server already knows as revoked, or that has expired, needs no
/// write and does not count.
async fn revoke_access<S: Stores>(
    core: &Core<S>,
    client_id: &str,
    jti: &str,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if expires_at <= now || core.store.is_revoked(jti) {
        return Ok(());
    }
    core.revocation_limit.take(client_id, now)?;
    let written = core.store.revoke_access(jti, expires_at).await;
    counted(core, client_id, now, written)
}

/// Revokes a refresh token's family, within the client's bound unless the
/// family is known to be revoked already (which then counts only if something
/// was left to write after all).
async fn revoke_family<S: Stores>(
    core: &Core<S>,
    client_id: &str,
    family_id: &str,
    already_revoked: bool,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if already_revoked {
        core.store.revoke_family(family_id, now).await?;
        return Ok(());
    }
    core.revocation_limit.take(client_id, now)?;
    let written = core.store.revoke_family(family_id, now).await;
    counted(core, client_id, now, written)
}

/// Gives back the allowance a revocation took when it wrote nothing.
fn counted<S>(
    core: &Core<S>,
    client_id: &str,
    now: UnixTime,
    written: Result<bool, StoreError>,
) -> Result<(), OAuthError> {
    if !matches!(written, Ok(true)) {
        core.revocation_limit.give_back(client_id, now);
    }
    written.map(drop).map_err(OAuthError::from)
}
