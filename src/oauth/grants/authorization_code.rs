//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3), with
//! PKCE (RFC 7636).
//!
//! Risks this file guards against, first:
//! - a stolen code redeemed by someone else: the code is bound to its client,
//!   and with PKCE to a verifier only the client that asked for it knows;
//! - a code redeemed twice: single use is one conditional update in the store,
//!   so exactly one redemption wins on any number of replicas; presenting it
//!   again revokes what it issued (RFC 6749 §4.1.2);
//! - a PKCE downgrade: a verifier with no stored challenge fails, and so does
//!   a challenge with no verifier (RFC 9700 §4.8.2);
//! - a code sent to another redirect URI: the token request must name the one
//!   the authorization request named.

use super::super::Core;
use super::super::error::OAuthError;
use super::super::issuance::{IssuedTokens, Owner, mint_access, mint_refresh, persist_access};
use super::super::model::{AuthorizationCodeRecord, Client, CodeRedemption, GrantType, UnixTime};
use super::super::pkce;
use super::super::presented::classify;
use super::super::redirect_uri;
use super::super::storage::Stores;
use crate::tokens::credential::CredentialKind;
use crate::tokens::secret::{Secret, hash_secret, new_id};

/// What the token request carries for this grant.
pub(super) struct Redemption<'a> {
    pub(super) code: &'a Secret,
    pub(super) redirect_uri: Option<&'a str>,
    pub(super) code_verifier: Option<&'a str>,
}

pub(super) async fn issue<S: Stores>(
    core: &Core<S>,
    client: &Client,
    request: Redemption<'_>,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    // SPEC §5: what cannot be an `oac_` code is refused before any lookup.
    if !classify(request.code.expose()).is_lookup_candidate_for(CredentialKind::AuthorizationCode) {
        return Err(OAuthError::code_invalid());
    }
    let hash = hash_secret(request.code.expose());
    let code = core
        .store
        .find_code(&hash)
        .await?
        .ok_or_else(OAuthError::code_invalid)?;
    if code.client_id != client.id {
        return Err(OAuthError::code_of_another_client());
    }
    if code.used_at.is_some() {
        revoke_issued(core, &code, now).await?;
        return Err(OAuthError::code_already_used());
    }
    if code.expires_at <= now {
        return Err(OAuthError::code_expired());
    }
    check_redirect_uri(client, &code, request.redirect_uri)?;
    check_verifier(&code, request.code_verifier)?;
    check_owner(core, &code)?;

    let owner = Owner {
        user_id: &code.user_id,
        username: &code.username,
    };
    let access = mint_access(core, client, Some(owner), &code.scope, now)?;
    let refresh = client
        .allows(GrantType::RefreshToken)
        .then(|| mint_refresh(core, &new_id(), &code.scope, &access, now));
    let issued = CodeRedemption {
        access_jti: access.claims.jti.clone(),
        access_expires_at: access.claims.exp,
        family_id: refresh
            .as_ref()
            .map(|(_, token)| token.record.family_id.clone()),
    };
    let redeemed = core
        .store
        .redeem_code(
            &hash,
            now,
            &issued,
            refresh.as_ref().map(|(_, token)| token),
        )
        .await?;
    if !redeemed {
        // Another redemption won between our read and our write: this one is
        // the replay, and what the winner got is revoked.
        if let Some(code) = core.store.find_code(&hash).await? {
            revoke_issued(core, &code, now).await?;
        }
        return Err(OAuthError::code_already_used());
    }
    persist_access(core, &access).await?;
    Ok(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token: refresh.map(|(value, _)| value),
        scope: code.scope,
    })
}

/// RFC 6749 §4.1.3: `redirect_uri` is required, and must be identical, when
/// the authorization request included one. When it did not, one given here
/// must still be registered.
fn check_redirect_uri(
    client: &Client,
    code: &AuthorizationCodeRecord,
    presented: Option<&str>,
) -> Result<(), OAuthError> {
    let matches = match (&code.redirect_uri, presented) {
        (Some(bound), Some(presented)) => bound == presented,
        (Some(_), None) => false,
        (None, Some(presented)) => redirect_uri::registered(client, presented).is_some(),
        (None, None) => true,
    };
    if matches {
        Ok(())
    } else {
        Err(OAuthError::redirect_uri_mismatch())
    }
}

fn check_verifier(
    code: &AuthorizationCodeRecord,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    match (code.code_challenge.as_deref(), verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::code_verifier_unexpected()),
        (Some(_), None) => Err(OAuthError::code_verifier_missing()),
        (Some(_), Some(verifier)) if !pkce::is_verifier(verifier) => {
            Err(OAuthError::code_verifier_malformed())
        }
        (Some(challenge), Some(verifier)) if pkce::verifies(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::code_verifier_mismatch()),
    }
}

/// A user locked or disabled since they approved the code gets no tokens.
fn check_owner<S: Stores>(
    core: &Core<S>,
    code: &AuthorizationCodeRecord,
) -> Result<(), OAuthError> {
    let status = core.store.user_status(&code.user_id);
    if status.disabled {
        return Err(OAuthError::user_disabled());
    }
    if status.locked {
        return Err(OAuthError::user_locked());
    }
    Ok(())
}

/// Revokes what the code's redemption issued: the refresh-token family, with
/// every access token issued in it, and the first access token itself.
async fn revoke_issued<S: Stores>(
    core: &Core<S>,
    code: &AuthorizationCodeRecord,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let Some(issued) = &code.issued else {
        return Ok(());
    };
    if let Some(family_id) = &issued.family_id {
        core.store.revoke_family(family_id, now).await?;
    }
    core.store
        .revoke_access(&issued.access_jti, issued.access_expires_at)
        .await?;
    Ok(())
}
