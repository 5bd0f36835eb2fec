//! Token introspection (RFC 7662): is this token active, and what does it carry?
//!
//! A JWT is answered from memory: the signature against the key ring, then
//! revocations and client/user status, all kept at most a second behind the
//! database. Opaque tokens need one lookup.

use super::Core;
use super::client_auth::{ClientCredentials, authenticate_confidential};
use super::error::OAuthError;
use super::issuance::from_jwt_claims;
use super::model::{AccessClaims, RefreshRecord, UnixTime};
use super::presented::looks_like_jwt;
use super::storage::Stores;
use crate::tokens::jwt::{self, JwtRejection};
use crate::tokens::secret::hash_secret;

/// RFC 7662 §2.2 `token_type` of access tokens.
pub const BEARER: &str = "Bearer";
/// `token_type` reported for refresh tokens.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The answer of an introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Expired, revoked, unknown, forged, or its client or user is no longer
    /// allowed: RFC 7662 says nothing more than `active: false`.
    Inactive,
    /// An active token and what it carries.
    Active(Box<ActiveToken>),
}

/// The members of an active introspection response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    /// Granted scope.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user's login name, for password-grant tokens.
    pub username: Option<String>,
    /// `Bearer` or `refresh_token`.
    pub token_type: &'static str,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Subject.
    pub sub: String,
    /// Audience; refresh tokens have none.
    pub aud: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Token id; refresh tokens have none.
    pub jti: Option<String>,
}

/// Introspects `token` for the authenticated, confidential caller. Any such client
/// may introspect any token: resource servers are registered as clients.
pub async fn introspect<S: Stores>(
    core: &Core<S>,
    caller: &ClientCredentials,
    token: &str,
    token_type_hint: Option<&str>,
    now: UnixTime,
) -> Result<Introspection, OAuthError> {
    authenticate_confidential(&core.store, caller).await?;
    if token.is_empty() {
        return Err(OAuthError::missing_parameter("token"));
    }
    if looks_like_jwt(token) {
        let claims = verify_jwt(core, token).await;
        return match claims {
            Some(claims) => access_answer(core, claims, now).await,
            None => Ok(Introspection::Inactive),
        };
    }
    let hash = hash_secret(token);
    let refresh_first = token_type_hint == Some(REFRESH_TOKEN);
    if refresh_first && let Some(record) = core.store.find_refresh(&hash).await? {
        return refresh_answer(core, &record, now).await;
    }
    if let Some(record) = core.store.find_opaque(&hash).await? {
        if !issued_here(core, &record.claims.iss, &record.claims.aud) {
            return Ok(Introspection::Inactive);
        }
        return access_answer(core, record.claims, now).await;
    }
    if !refresh_first && let Some(record) = core.store.find_refresh(&hash).await? {
        return refresh_answer(core, &record, now).await;
    }
    Ok(Introspection::Inactive)
}

/// Verifies a JWT's signature, then that this server issued it for its own
/// audience. A `kid` this replica does not know yet may belong to a key another
/// replica has just started using, so the key ring is reloaded once before the
/// token is declared unknown.
pub(crate) async fn verify_jwt<S: Stores>(core: &Core<S>, token: &str) -> Option<AccessClaims> {
    let claims = match core.verified_jwts.verify(&core.store.key_ring(), token) {
        Err(JwtRejection::UnknownKey) if jwt::key_id(token).is_ok() => {
            let ring = core.store.reload_keys().await.ok()?;
            core.verified_jwts.verify(&ring, token).ok()?
        }
        other => other.ok()?,
    };
    // After the cache: it remembers only the signature's verdict, so the claims
    // are checked on every call.
    if !issued_here(core, &claims.iss, &claims.aud) {
        return None;
    }
    from_jwt_claims(&claims)
}

/// RFC 9068 §4: the resource server "MUST validate that the `iss` claim exactly
/// matches the issuer" and "that the `aud` claim contains a resource indicator
/// value corresponding to an identifier the resource server expects for
/// itself". Servers sharing a database share its signing keys, so a token
/// signed with our key may still come from a server configured with another
/// issuer or audience; that token is not ours to vouch for. Opaque tokens store
/// both and are held to the same rule.
pub(crate) fn issued_here<S>(core: &Core<S>, iss: &str, aud: &str) -> bool {
    iss == core.policy.issuer && aud == core.policy.audience
}

/// Whether an access token is active at `now` (SPEC §5): in its lifetime, not
/// revoked, and its client and user still allowed.
async fn access_answer<S: Stores>(
    core: &Core<S>,
    claims: AccessClaims,
    now: UnixTime,
) -> Result<Introspection, OAuthError> {
    let active = claims.exp > now
        && claims.nbf <= now
        && !core.store.is_revoked(&claims.jti)
        && user_allowed(core, claims.user_id.as_deref())
        && client_enabled(core, &claims.client_id).await?;
    if !active {
        return Ok(Introspection::Inactive);
    }
    Ok(Introspection::Active(Box::new(ActiveToken {
        scope: claims.scope.to_string(),
        client_id: claims.client_id,
        username: claims.username,
        token_type: BEARER,
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        sub: claims.sub,
        aud: Some(claims.aud),
        iss: claims.iss,
        jti: Some(claims.jti),
    })))
}

async fn refresh_answer<S: Stores>(
    core: &Core<S>,
    record: &RefreshRecord,
    now: UnixTime,
) -> Result<Introspection, OAuthError> {
    let active = !record.revoked
        && record.used_at.is_none()
        && record.expires_at > now
        && user_allowed(core, record.user_id.as_deref())
        && client_enabled(core, &record.client_id).await?;
    if !active {
        return Ok(Introspection::Inactive);
    }
    Ok(Introspection::Active(Box::new(ActiveToken {
        scope: record.scope.to_string(),
        client_id: record.client_id.clone(),
        username: record.username.clone(),
        token_type: REFRESH_TOKEN,
        exp: record.expires_at,
        iat: record.issued_at,
        nbf: record.issued_at,
        sub: record
            .user_id
            .clone()
            .unwrap_or_else(|| record.client_id.clone()),
        aud: None,
        iss: core.policy.issuer.clone(),
        jti: None,
    })))
}

async fn client_enabled<S: Stores>(core: &Core<S>, client_id: &str) -> Result<bool, OAuthError> {
    let client = core.store.client(client_id).await?;
    Ok(client.is_some_and(|client| client.enabled))
}

fn user_allowed<S: Stores>(core: &Core<S>, user_id: Option<&str>) -> bool {
    user_id.is_none_or(|id| core.store.user_status(id).may_hold_tokens())
}
