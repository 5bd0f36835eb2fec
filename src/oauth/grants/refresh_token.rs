//! The refresh token grant (RFC 6749 §6) with rotation and replay detection
//! (RFC 9700 §4.14.2).
//!
//! Risks this file guards against, first:
//! - a stolen refresh token used beside the legitimate one: every token is single
//!   use, and presenting a used one revokes the whole family, so at most one of
//!   the two parties keeps a session and the theft shows;
//! - two requests racing with one token: the store marks the token used in one
//!   conditional update, so exactly one wins on any number of replicas; the loser
//!   is treated as a replay;
//! - the reuse grace (`--refresh-token-reuse-grace`, off by default) widening
//!   what a thief may do: within it, a used token presented again by its own
//!   client is refused but spares the family, so a replay inside the window
//!   goes unpunished; it never yields a token, and after the window a replay
//!   revokes as always;
//! - a refresh widening the grant: RFC 6749 §6, "The requested scope MUST NOT
//!   include any scope not originally granted by the resource owner";
//! - a token of another client: RFC 6749 §6, the server MUST "validate the refresh
//!   token" and that it "was issued to the authenticated client".

use super::super::Core;
use super::super::error::OAuthError;
use super::super::issuance::{
    IssuedTokens, Owner, can_mint, mint_access, mint_access_as, mint_refresh, mint_successor,
    persist_access,
};
use super::super::model::{Client, RefreshRecord, UnixTime};
use super::super::presented::classify;
use super::super::scope::ScopeSet;
use super::super::storage::Stores;
use crate::tokens::credential::CredentialKind;
use crate::tokens::secret::{Secret, hash_secret};

pub(super) async fn issue<S: Stores>(
    core: &Core<S>,
    client: &Client,
    presented: &Secret,
    scope: Option<&str>,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    // SPEC §5: a value that cannot be a refresh token (an access token, a
    // mistyped credential, noise) is refused before any lookup.
    if !classify(presented.expose()).is_lookup_candidate_for(CredentialKind::RefreshToken) {
        return Err(OAuthError::refresh_token_invalid());
    }
    let hash = hash_secret(presented.expose());
    if scope.is_none()
        && let Some(issued) = exchange(core, client, &hash, now).await?
    {
        return Ok(issued);
    }
    let record = core
        .store
        .find_refresh(&hash)
        .await?
        .ok_or_else(OAuthError::refresh_token_invalid)?;
    if record.client_id != client.id {
        return Err(OAuthError::refresh_token_of_another_client());
    }
    if record.revoked {
        return Err(OAuthError::refresh_token_revoked());
    }
    if record.used_at.is_some() {
        return Err(refuse_reuse(core, &record, now).await?);
    }
    if record.expires_at <= now {
        return Err(OAuthError::refresh_token_expired());
    }
    let scope = narrowed_scope(&record, scope)?;
    check_owner(core, &record)?;

    let access = mint_access(core, client, owner(&record), &scope, now)?;
    let (value, next) = mint_refresh(core, &record.family_id, &record.grant_scope, &access, now);
    if !core.store.rotate_refresh(&hash, now, &next).await? {
        // Someone else used (or revoked) the token between our read and our
        // write: read it again to say which, and whether it was within the grace.
        let current = core
            .store
            .find_refresh(&hash)
            .await?
            .ok_or_else(OAuthError::refresh_token_invalid)?;
        if current.revoked {
            return Err(OAuthError::refresh_token_revoked());
        }
        return Err(refuse_reuse(core, &current, now).await?);
    }
    persist_access(core, &access).await?;
    Ok(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token: Some(value),
        scope,
    })
}

/// The common case, a live token exchanged for the whole grant again, in one
/// store call. `None` when the store refused or has no such call: the checked
/// path then runs and says why.
async fn exchange<S: Stores>(
    core: &Core<S>,
    client: &Client,
    used_hash: &str,
    now: UnixTime,
) -> Result<Option<IssuedTokens>, OAuthError> {
    if !can_mint(core, now) {
        return Ok(None);
    }
    let (value, successor) = mint_successor(core, client, now);
    let jti = successor.access_jti.clone();
    let Some(record) = core
        .store
        .exchange_refresh(used_hash, &client.id, &successor)
        .await?
    else {
        return Ok(None);
    };
    let access = mint_access_as(core, jti, client, owner(&record), &record.scope, now)?;
    persist_access(core, &access).await?;
    Ok(Some(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token: Some(value),
        scope: record.scope,
    }))
}

/// The answer to a used token presented again by its own client: RFC 9700
/// §4.14.2 has the server revoke the whole family, since it cannot tell the
/// legitimate holder from a thief. Within `--refresh-token-reuse-grace`
/// seconds of the token's use the family is spared: that is a second tab or a
/// retry losing to its own winner far more often than a thief, and the winner
/// keeps the tokens it got. Refused either way.
async fn refuse_reuse<S: Stores>(
    core: &Core<S>,
    record: &RefreshRecord,
    now: UnixTime,
) -> Result<OAuthError, OAuthError> {
    let grace = core.policy.refresh_token_reuse_grace;
    // With no grace, never spared: not even when another replica's clock
    // stamped the use a moment ahead of ours.
    let within_grace = grace > 0 && record.used_at.is_some_and(|used_at| now - used_at < grace);
    if !within_grace {
        core.store.revoke_family(&record.family_id, now).await?;
    }
    Ok(OAuthError::refresh_token_already_used())
}

fn owner(record: &RefreshRecord) -> Option<Owner<'_>> {
    record
        .user_id
        .as_deref()
        .zip(record.username.as_deref())
        .map(|(user_id, username)| Owner { user_id, username })
}

/// The requested scope, within the original grant; the whole grant when omitted
/// (RFC 6749 §6: "If omitted is treated as equal to the scope originally granted").
fn narrowed_scope(record: &RefreshRecord, requested: Option<&str>) -> Result<ScopeSet, OAuthError> {
    match requested {
        None => Ok(record.grant_scope.clone()),
        Some(text) => {
            let scope = ScopeSet::parse(text)?;
            match scope.first_outside(&record.grant_scope) {
                Some(outside) => Err(OAuthError::scope_wider_than_grant(outside)),
                None => Ok(scope),
            }
        }
    }
}

/// A user who was locked or disabled since the grant gets no new tokens. The
/// status comes from memory: management commands return only once servers have
/// reloaded it, and a lock after failed logins reloads at once.
fn check_owner<S: Stores>(core: &Core<S>, record: &RefreshRecord) -> Result<(), OAuthError> {
    let Some(user_id) = record.user_id.as_deref() else {
        return Ok(());
    };
    let status = core.store.user_status(user_id);
    if status.disabled {
        return Err(OAuthError::user_disabled());
    }
    if status.locked {
        return Err(OAuthError::user_locked());
    }
    Ok(())
}
