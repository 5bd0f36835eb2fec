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
use super::super::issuance::{
    IssuedTokens, Owner, can_mint, mint_access_as, mint_successor, persist_access,
};
use super::super::model::{
    AuthorizationCodeRecord, Client, CodeRedemptionRequest, GrantType, UnixTime,
};
use super::super::pkce;
use super::super::presented::classify;
use super::super::redirect_uri;
use super::super::storage::Stores;
use crate::tokens::credential::CredentialKind;
use crate::tokens::secret::{Secret, hash_secret, new_family_id};

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
    // The common case, a good request, is one write that checks every
    // binding and reads nothing first.
    if request.code_verifier.is_none_or(pkce::is_verifier)
        && can_mint(core, now)
        && let Some(issued) = redeem(core, client, &hash, &request.as_bound(), now).await?
    {
        return Ok(issued);
    }
    // Otherwise the code is read and each rule says why it fails.
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
    // Every rule holds: redeem it bound as it is stored.
    let bound = Bindings {
        redirect_uri: code.redirect_uri.clone(),
        code_challenge: code.code_challenge.clone(),
    };
    if let Some(issued) = redeem(core, client, &hash, &bound, now).await? {
        return Ok(issued);
    }
    // Another redemption won between our read and our write, or the user was
    // locked meanwhile.
    match core.store.find_code(&hash).await? {
        Some(code) if code.used_at.is_some() => {
            revoke_issued(core, &code, now).await?;
            Err(OAuthError::code_already_used())
        }
        _ => Err(owner_refusal(core, &code.user_id).await?),
    }
}

/// What the stored code must be bound to for a redemption to match it.
struct Bindings {
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
}

impl Redemption<'_> {
    /// The bindings as the request presents them: its redirect URI, and the
    /// S256 of its verifier.
    fn as_bound(&self) -> Bindings {
        Bindings {
            redirect_uri: self.redirect_uri.map(str::to_owned),
            code_challenge: self.code_verifier.map(hash_secret),
        }
    }
}

/// Redeems the code in one store call if it is live, of `client`, bound to
/// `bound`, and of a user who may hold tokens; mints the tokens it gives.
/// `None` when nothing was written.
async fn redeem<S: Stores>(
    core: &Core<S>,
    client: &Client,
    code_hash: &str,
    bound: &Bindings,
    now: UnixTime,
) -> Result<Option<IssuedTokens>, OAuthError> {
    let (value, successor) = mint_successor(core, client, now);
    let with_refresh = client.allows(GrantType::RefreshToken);
    let request = CodeRedemptionRequest {
        code_hash: code_hash.to_owned(),
        client_id: client.id.clone(),
        redirect_uri: bound.redirect_uri.clone(),
        code_challenge: bound.code_challenge.clone(),
        successor,
        family_id: with_refresh.then(|| new_family_id(now)),
    };
    let Some(code) = core.store.redeem_code(&request).await? else {
        return Ok(None);
    };
    let owner = Owner {
        user_id: &code.user_id,
        username: &code.username,
    };
    let jti = request.successor.access_jti.clone();
    let access = mint_access_as(core, jti, client, Some(owner), &code.scope, now)?;
    persist_access(core, &access).await?;
    Ok(Some(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token: with_refresh.then_some(value),
        scope: code.scope,
    }))
}

/// Why a user's code buys nothing now, as the database has the user.
async fn owner_refusal<S: Stores>(core: &Core<S>, user_id: &str) -> Result<OAuthError, OAuthError> {
    Ok(match core.store.find_user_by_id(user_id).await? {
        Some(user) if user.status.disabled => OAuthError::user_disabled(),
        Some(user) if user.status.locked => OAuthError::user_locked(),
        _ => OAuthError::code_invalid(),
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
