//! Minting the tokens every grant hands out. The grants decide *whether*; this
//! file decides *what the token looks like*.

use super::error::OAuthError;
use super::model::{
    AccessClaims, Client, NewRefreshToken, OpaqueAccessRecord, RefreshRecord, RefreshSuccessor,
    UnixTime, User,
};
use super::scope::ScopeSet;
use super::storage::{AccessTokenStore, KeyStore};
use super::{Core, TokenFormat};
use crate::tokens::credential::{self, CredentialKind};
use crate::tokens::jwt::{self, JwtClaims};
use crate::tokens::{opaque, secret};

/// What a successful token request returns (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// A refresh token, when the grant and the client call for one.
    pub refresh_token: Option<String>,
    /// The granted scope.
    pub scope: ScopeSet,
}

/// An access token that exists as a value but may not be stored yet: an opaque
/// token is persisted only once the surrounding grant has committed.
pub(crate) struct MintedAccess {
    pub(crate) token: String,
    pub(crate) claims: AccessClaims,
    pub(crate) opaque_hash: Option<String>,
}

/// The resource owner a token is issued for, if any.
#[derive(Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) username: &'a str,
}

impl<'a> From<&'a User> for Owner<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            user_id: &user.id,
            username: &user.username,
        }
    }
}

/// Builds an access token for `client` (and `owner`, if any) with `scope`.
pub(crate) fn mint_access<S: KeyStore>(
    core: &Core<S>,
    client: &Client,
    owner: Option<Owner<'_>>,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<MintedAccess, OAuthError> {
    mint_access_as(core, secret::new_id(), client, owner, scope, now)
}

/// When an access token for `client` issued at `now` expires.
fn access_expiry<S>(core: &Core<S>, client: &Client, now: UnixTime) -> UnixTime {
    now + client
        .access_token_ttl
        .unwrap_or(core.policy.access_token_ttl)
}

/// [`mint_access`] with a `jti` chosen beforehand, for a refresh exchange that
/// records the access token before it knows the token's owner and scope.
pub(crate) fn mint_access_as<S: KeyStore>(
    core: &Core<S>,
    jti: String,
    client: &Client,
    owner: Option<Owner<'_>>,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<MintedAccess, OAuthError> {
    let claims = AccessClaims {
        jti,
        iss: core.policy.issuer.clone(),
        sub: owner.map_or_else(|| client.id.clone(), |o| o.user_id.to_owned()),
        aud: core.policy.audience.clone(),
        client_id: client.id.clone(),
        username: owner.map(|o| o.username.to_owned()),
        user_id: owner.map(|o| o.user_id.to_owned()),
        scope: scope.clone(),
        iat: now,
        nbf: now,
        exp: access_expiry(core, client, now),
    };
    match core.policy.token_format {
        TokenFormat::Jwt => {
            let ring = core.store.key_ring();
            let key = ring
                .signing_key(core.policy.signing_alg, now)
                .ok_or_else(|| OAuthError::internal_message("no active signing key"))?;
            let token = jwt::sign(key, &to_jwt_claims(&claims)).map_err(OAuthError::internal)?;
            Ok(MintedAccess {
                token,
                claims,
                opaque_hash: None,
            })
        }
        TokenFormat::Opaque => {
            let minted = opaque::mint();
            Ok(MintedAccess {
                token: minted.value,
                claims,
                opaque_hash: Some(minted.hash),
            })
        }
    }
}

/// Whether an access token can be minted at `now`: a JWT needs a key that signs
/// then. Asked before a step that cannot be undone if minting then fails.
pub(crate) fn can_mint<S: KeyStore>(core: &Core<S>, now: UnixTime) -> bool {
    match core.policy.token_format {
        TokenFormat::Jwt => core
            .store
            .key_ring()
            .signing_key(core.policy.signing_alg, now)
            .is_some(),
        TokenFormat::Opaque => true,
    }
}

/// Stores the access token if its format needs storage.
pub(crate) async fn persist_access<S: AccessTokenStore>(
    core: &Core<S>,
    access: &MintedAccess,
) -> Result<(), OAuthError> {
    if let Some(hash) = &access.opaque_hash {
        let record = OpaqueAccessRecord {
            token_hash: hash.clone(),
            claims: access.claims.clone(),
        };
        core.store.insert_opaque(&record).await?;
    }
    Ok(())
}

/// A new refresh token in `family_id`, issued beside `access`: an `ort_`
/// credential (SPEC §5). Returns the value for the client and the record for
/// the store, which keeps only its hash.
pub(crate) fn mint_refresh<S>(
    core: &Core<S>,
    family_id: &str,
    grant_scope: &ScopeSet,
    access: &MintedAccess,
    now: UnixTime,
) -> (String, NewRefreshToken) {
    let value = credential::mint(CredentialKind::RefreshToken);
    let record = RefreshRecord {
        token_hash: secret::hash_secret(&value),
        family_id: family_id.to_owned(),
        client_id: access.claims.client_id.clone(),
        user_id: access.claims.user_id.clone(),
        username: access.claims.username.clone(),
        scope: access.claims.scope.clone(),
        grant_scope: grant_scope.clone(),
        issued_at: now,
        expires_at: refresh_expiry(core, now),
        used_at: None,
        revoked: false,
    };
    let token = NewRefreshToken {
        record,
        access_jti: access.claims.jti.clone(),
        access_expires_at: access.claims.exp,
    };
    (value, token)
}

/// A successor for a one-step refresh exchange, an `ort_` credential like any
/// refresh token: its value, and what the store writes for it before the
/// replaced token's family, owner and scope are known.
pub(crate) fn mint_successor<S>(
    core: &Core<S>,
    client: &Client,
    now: UnixTime,
) -> (String, RefreshSuccessor) {
    let value = credential::mint(CredentialKind::RefreshToken);
    let successor = RefreshSuccessor {
        token_hash: secret::hash_secret(&value),
        issued_at: now,
        expires_at: refresh_expiry(core, now),
        access_jti: secret::new_id(),
        access_expires_at: access_expiry(core, client, now),
    };
    (value, successor)
}

/// When a refresh token issued at `now` expires.
fn refresh_expiry<S>(core: &Core<S>, now: UnixTime) -> UnixTime {
    now + core.policy.refresh_token_ttl
}

/// The JWT form of the claims.
pub(crate) fn to_jwt_claims(claims: &AccessClaims) -> JwtClaims {
    JwtClaims {
        iss: claims.iss.clone(),
        sub: claims.sub.clone(),
        aud: claims.aud.clone(),
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        jti: claims.jti.clone(),
        client_id: claims.client_id.clone(),
        scope: claims.scope.to_string(),
        username: claims.username.clone(),
    }
}

/// The claims of a verified JWT. A malformed scope makes the token unusable.
pub(crate) fn from_jwt_claims(claims: &JwtClaims) -> Option<AccessClaims> {
    let scope = ScopeSet::parse(&claims.scope).ok()?;
    let user_id = claims.username.as_ref().map(|_| claims.sub.clone());
    Some(AccessClaims {
        jti: claims.jti.clone(),
        iss: claims.iss.clone(),
        sub: claims.sub.clone(),
        aud: claims.aud.clone(),
        client_id: claims.client_id.clone(),
        username: claims.username.clone(),
        user_id,
        scope,
        iat: claims.iat,
        nbf: claims.nbf,
        exp: claims.exp,
    })
}

/// The scope to grant: the requested one, which must be within what the client
/// may have, or, when none was requested, everything the client may have
/// (RFC 6749 §3.3 lets the server pick a default).
pub(crate) fn resolve_scope(
    client: &Client,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    match requested.filter(|text| !text.trim().is_empty()) {
        None => Ok(client.scopes.clone()),
        Some(text) => {
            let scope = ScopeSet::parse(text)?;
            match scope.first_outside(&client.scopes) {
                Some(outside) => Err(OAuthError::scope_not_allowed(outside)),
                None => Ok(scope),
            }
        }
    }
}
