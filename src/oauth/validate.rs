//! The one place that decides whether a presented credential is valid now, and
//! whose it is. It does not know who is asking: introspection (RFC 7662) asks it
//! for a resource server, and the request check of SPEC §9 will ask it for a
//! proxy.
//!
//! A JWT is answered from memory: the signature against the key ring, then
//! revocations and client and user status, all kept at most a second behind the
//! database. Other credentials need one lookup, which the store may answer
//! from memory for a credential it has seen. A store that does not answer, or a
//! key ring that cannot be reloaded, is `temporarily_unavailable`, never
//! "invalid": a caller must not drop a session because the database blinked.

use super::Core;
use super::error::OAuthError;
use super::issuance::from_jwt_claims;
use super::model::{AccessClaims, ApiKeyRecord, RefreshRecord, UnixTime};
use super::presented::{Presented, classify};
use super::scope::ScopeSet;
use super::storage::Stores;
use crate::tokens::credential::CredentialKind;
use crate::tokens::jwt::{self, JwtRejection};
use crate::tokens::secret::hash_secret;

/// The RFC 7662 `token_type_hint` value for refresh tokens.
pub(crate) const REFRESH_TOKEN_HINT: &str = "refresh_token";

/// Which kind of credential was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialType {
    /// An access token, JWT or opaque.
    AccessToken,
    /// A refresh token.
    RefreshToken,
    /// An API key (SPEC §8).
    ApiKey,
}

/// Which kinds of credential a caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Anything oauthd issues to stand for a grant: access and refresh tokens
    /// and API keys (introspection, RFC 7662 and SPEC §5).
    AnyToken,
    /// What a request to an API may carry: access tokens and API keys (the
    /// request check, SPEC §9). A refresh token, an authorization code or a
    /// client secret is never looked up.
    RequestCredential,
}

/// A valid credential and who it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCredential {
    /// What kind of credential it is.
    pub kind: CredentialType,
    /// The client it was issued to.
    pub client_id: String,
    /// The user's id, for tokens a user's login produced.
    pub user_id: Option<String>,
    /// The user's login name, beside `user_id`.
    pub username: Option<String>,
    /// The scope it carries.
    pub scope: ScopeSet,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it starts being valid.
    pub not_before: UnixTime,
    /// When it stops being valid.
    pub expires_at: UnixTime,
    /// The token id; refresh tokens have none.
    pub jti: Option<String>,
    /// The issuer.
    pub iss: String,
    /// The audience; refresh tokens have none.
    pub aud: Option<String>,
}

impl ValidCredential {
    /// The subject: the user, or the client when no user is involved.
    pub fn subject(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.client_id)
    }
}

/// Why a credential is not valid. The caller decides how much of this to say:
/// introspection says only `active: false` (RFC 7662 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Not the shape of anything this server issues, or a JWT whose signature,
    /// issuer or audience is not ours.
    Malformed,
    /// Well-formed, but nothing this server knows.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Before its `nbf`.
    NotYetValid,
    /// Revoked, alone or with its family.
    Revoked,
    /// A refresh token that was already exchanged.
    AlreadyUsed,
    /// Its client is disabled or deleted.
    ClientDisabled,
    /// Its user is locked.
    UserLocked,
    /// Its user is disabled.
    UserDisabled,
    /// A credential of a kind the caller does not accept here: a refresh
    /// token, an authorization code or a client secret sent to an API.
    NotAccepted,
}

/// The verdict on a presented credential.
pub(crate) type Validation = Result<ValidCredential, Invalid>;

/// What a presented token turned out to be, before asking whether it is still
/// good: the token revocation needs this much, and validity builds on it.
#[derive(Debug, Clone)]
pub(crate) enum Found {
    /// An access token issued here: a verified JWT, or a stored opaque token.
    Access(AccessClaims),
    /// A stored refresh token.
    Refresh(RefreshRecord),
    /// A stored API key.
    ApiKey(ApiKeyRecord),
}

/// Finds what `token` is. The classifier decides where to look: a JWT is
/// verified, an `oat_` token is looked for among access tokens only, an `ort_`
/// among refresh tokens only, an `oak_` among API keys only, and a malformed
/// value (a made-up one, or a credential whose checksum fails) nowhere (SPEC
/// §5). A legacy unprefixed value may be an access or a refresh token: `hint`
/// (RFC 7662's and RFC 7009's `token_type_hint`) then only orders the two
/// lookups, refresh tokens first for a refresh-token hint.
pub(crate) async fn find<S: Stores>(
    core: &Core<S>,
    token: &str,
    hint: Option<&str>,
) -> Result<Option<Found>, OAuthError> {
    find_accepted(core, classify(token), hint, Accepted::AnyToken).await
}

/// [`find`] for a value already classified, among the `accepted` kinds.
async fn find_accepted<S: Stores>(
    core: &Core<S>,
    presented: Presented<'_>,
    hint: Option<&str>,
    accepted: Accepted,
) -> Result<Option<Found>, OAuthError> {
    let token = match presented {
        Presented::Jwt(jwt) => return Ok(verify_jwt(core, jwt).await?.map(Found::Access)),
        Presented::Malformed => return Ok(None),
        Presented::Credential(_, token) | Presented::Legacy(token) => token,
    };
    let hash = hash_secret(token);
    if presented.is_lookup_candidate_for(CredentialKind::ApiKey) {
        return Ok(core.store.find_api_key(&hash).await?.map(Found::ApiKey));
    }
    let may_be_refresh = accepted == Accepted::AnyToken
        && presented.is_lookup_candidate_for(CredentialKind::RefreshToken);
    let may_be_access = presented.is_lookup_candidate_for(CredentialKind::AccessToken);
    let refresh_first = hint == Some(REFRESH_TOKEN_HINT);
    if may_be_refresh
        && refresh_first
        && let Some(record) = core.store.find_refresh(&hash).await?
    {
        return Ok(Some(Found::Refresh(record)));
    }
    if may_be_access && let Some(record) = core.store.find_opaque(&hash).await? {
        let claims = record.claims;
        return Ok(issued_here(core, &claims.iss, &claims.aud).then_some(Found::Access(claims)));
    }
    if may_be_refresh
        && !refresh_first
        && let Some(record) = core.store.find_refresh(&hash).await?
    {
        return Ok(Some(Found::Refresh(record)));
    }
    Ok(None)
}

/// Whether `token` is valid at `now`, and whose it is; any kind of token.
pub(crate) async fn validate<S: Stores>(
    core: &Core<S>,
    token: &str,
    hint: Option<&str>,
    now: UnixTime,
) -> Result<Validation, OAuthError> {
    validate_accepted(core, token, hint, Accepted::AnyToken, now).await
}

/// Whether `token` is valid at `now` as a credential of the `accepted` kinds,
/// and whose it is.
pub(crate) async fn validate_accepted<S: Stores>(
    core: &Core<S>,
    token: &str,
    hint: Option<&str>,
    accepted: Accepted,
    now: UnixTime,
) -> Result<Validation, OAuthError> {
    let presented = classify(token);
    if accepted == Accepted::RequestCredential
        && presented.kind().is_some_and(|kind| {
            !matches!(kind, CredentialKind::AccessToken | CredentialKind::ApiKey)
        })
    {
        return Ok(Err(Invalid::NotAccepted));
    }
    let Some(found) = find_accepted(core, presented, hint, accepted).await? else {
        // A well-formed credential nobody stored is unknown; anything else,
        // including a JWT that is not genuinely ours, is malformed.
        return Ok(Err(match presented {
            Presented::Credential(..) | Presented::Legacy(_) => Invalid::Unknown,
            Presented::Jwt(_) | Presented::Malformed => Invalid::Malformed,
        }));
    };
    match found {
        Found::Access(claims) => access_validity(core, claims, now).await,
        Found::Refresh(record) => refresh_validity(core, record, now).await,
        Found::ApiKey(record) => api_key_validity(core, record, now).await,
    }
}

/// Verifies a JWT's signature, then that this server issued it for its own
/// audience. `None`: not one of ours. A `kid` this replica does not know yet may
/// belong to a key another replica has just started using, so the key ring is
/// reloaded once before the token is declared unknown; a reload that fails is
/// `temporarily_unavailable`.
pub(crate) async fn verify_jwt<S: Stores>(
    core: &Core<S>,
    token: &str,
) -> Result<Option<AccessClaims>, OAuthError> {
    let verified = match core.verified_jwts.verify(&core.store.key_ring(), token) {
        Err(JwtRejection::UnknownKey) if jwt::key_id(token).is_ok() => {
            // Whatever kept the ring from reloading (an unreachable database,
            // a key that does not unseal), this server cannot say the token is
            // invalid; the caller should retry rather than drop a session.
            let ring = core
                .store
                .reload_keys()
                .await
                .map_err(|_| OAuthError::TemporarilyUnavailable)?;
            core.verified_jwts.verify(&ring, token)
        }
        other => other,
    };
    let Ok(claims) = verified else {
        return Ok(None);
    };
    // After the cache: it remembers only the signature's verdict, so the claims
    // are checked on every call.
    if !issued_here(core, &claims.iss, &claims.aud) {
        return Ok(None);
    }
    Ok(from_jwt_claims(&claims))
}

/// RFC 9068 §4: the resource server "MUST validate that the `iss` claim exactly
/// matches the issuer" and "that the `aud` claim contains a resource indicator
/// value corresponding to an identifier the resource server expects for
/// itself". Servers sharing a database share its signing keys, so a token
/// signed with our key may still come from a server configured with another
/// issuer or audience; that token is not ours to vouch for. Opaque tokens store
/// both and are held to the same rule.
fn issued_here<S>(core: &Core<S>, iss: &str, aud: &str) -> bool {
    iss == core.policy.issuer && aud == core.policy.audience
}

/// SPEC §5: an access token is valid in its lifetime, unrevoked, while its
/// client and user are still allowed.
async fn access_validity<S: Stores>(
    core: &Core<S>,
    claims: AccessClaims,
    now: UnixTime,
) -> Result<Validation, OAuthError> {
    if claims.exp <= now {
        return Ok(Err(Invalid::Expired));
    }
    if claims.nbf > now {
        return Ok(Err(Invalid::NotYetValid));
    }
    if core.store.is_revoked(&claims.jti) {
        return Ok(Err(Invalid::Revoked));
    }
    if let Err(invalid) =
        holders_allowed(core, &claims.client_id, claims.user_id.as_deref()).await?
    {
        return Ok(Err(invalid));
    }
    Ok(Ok(ValidCredential {
        kind: CredentialType::AccessToken,
        client_id: claims.client_id,
        user_id: claims.user_id,
        username: claims.username,
        scope: claims.scope,
        issued_at: claims.iat,
        not_before: claims.nbf,
        expires_at: claims.exp,
        jti: Some(claims.jti),
        iss: claims.iss,
        aud: Some(claims.aud),
    }))
}

/// A refresh token is valid while unused, unrevoked and unexpired, and while its
/// client and user are still allowed.
async fn refresh_validity<S: Stores>(
    core: &Core<S>,
    record: RefreshRecord,
    now: UnixTime,
) -> Result<Validation, OAuthError> {
    if record.revoked {
        return Ok(Err(Invalid::Revoked));
    }
    if record.used_at.is_some() {
        return Ok(Err(Invalid::AlreadyUsed));
    }
    if record.expires_at <= now {
        return Ok(Err(Invalid::Expired));
    }
    if let Err(invalid) =
        holders_allowed(core, &record.client_id, record.user_id.as_deref()).await?
    {
        return Ok(Err(invalid));
    }
    Ok(Ok(ValidCredential {
        kind: CredentialType::RefreshToken,
        client_id: record.client_id,
        user_id: record.user_id,
        username: record.username,
        scope: record.scope,
        issued_at: record.issued_at,
        not_before: record.issued_at,
        expires_at: record.expires_at,
        jti: None,
        iss: core.policy.issuer.clone(),
        aud: None,
    }))
}

/// SPEC §8: an API key is valid until it expires or is revoked, while its
/// client is enabled, and "acts as that client, with at most the client's
/// scopes": a scope the client has lost since is dropped from the key's.
async fn api_key_validity<S: Stores>(
    core: &Core<S>,
    record: ApiKeyRecord,
    now: UnixTime,
) -> Result<Validation, OAuthError> {
    if record.revoked {
        return Ok(Err(Invalid::Revoked));
    }
    if record.expires_at <= now {
        return Ok(Err(Invalid::Expired));
    }
    let client = match core.store.client(&record.client_id).await? {
        Some(client) if client.enabled => client,
        _ => return Ok(Err(Invalid::ClientDisabled)),
    };
    core.store.api_key_used(&record.key_id, now);
    Ok(Ok(ValidCredential {
        kind: CredentialType::ApiKey,
        scope: record.scope.intersection(&client.scopes),
        client_id: record.client_id,
        user_id: None,
        username: None,
        issued_at: record.created_at,
        not_before: record.created_at,
        expires_at: record.expires_at,
        jti: None,
        iss: core.policy.issuer.clone(),
        aud: None,
    }))
}

/// Whether the client (enabled, not deleted) and the user (neither locked nor
/// disabled) a credential belongs to still allow it. The user's status comes
/// from memory; the client from memory, or the database for one memory lacks.
async fn holders_allowed<S: Stores>(
    core: &Core<S>,
    client_id: &str,
    user_id: Option<&str>,
) -> Result<Result<(), Invalid>, OAuthError> {
    if let Some(user_id) = user_id {
        let status = core.store.user_status(user_id);
        if status.disabled {
            return Ok(Err(Invalid::UserDisabled));
        }
        if status.locked {
            return Ok(Err(Invalid::UserLocked));
        }
    }
    let client = core.store.client(client_id).await?;
    if !client.is_some_and(|client| client.enabled) {
        return Ok(Err(Invalid::ClientDisabled));
    }
    Ok(Ok(()))
}
