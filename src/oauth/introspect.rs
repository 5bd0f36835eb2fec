//! Token introspection (RFC 7662): is this token active, and what does it carry?
//! The validator (`validate.rs`) decides; this file authenticates the caller and
//! words the answer.

use super::Core;
use super::client_auth::{ClientCredentials, authenticate_confidential};
use super::error::OAuthError;
use super::model::UnixTime;
use super::storage::Stores;
use super::validate::{CredentialType, ValidCredential, validate};

/// RFC 7662 §2.2 `token_type` of access tokens.
pub const BEARER: &str = "Bearer";
/// `token_type` reported for refresh tokens.
pub const REFRESH_TOKEN: &str = super::validate::REFRESH_TOKEN_HINT;
/// `token_type` reported for API keys (SPEC §5).
pub const API_KEY: &str = "api_key";

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
    /// `Bearer`, `refresh_token` or `api_key`.
    pub token_type: &'static str,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before; API keys have none.
    pub nbf: Option<UnixTime>,
    /// Subject.
    pub sub: String,
    /// Audience; refresh tokens have none.
    pub aud: Option<String>,
    /// Issuer; API keys have none.
    pub iss: Option<String>,
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
    Ok(match validate(core, token, token_type_hint, now).await? {
        Ok(valid) => Introspection::Active(Box::new(ActiveToken::from(valid))),
        Err(_) => Introspection::Inactive,
    })
}

impl From<ValidCredential> for ActiveToken {
    /// SPEC §5 lists what an API key's answer holds: `active`, `client_id`,
    /// `scope`, `sub`, `iat`, `exp` and `token_type`; nothing else.
    fn from(valid: ValidCredential) -> Self {
        let is_key = valid.kind == CredentialType::ApiKey;
        Self {
            scope: valid.scope.to_string(),
            sub: valid.subject().to_owned(),
            client_id: valid.client_id,
            username: valid.username,
            token_type: match valid.kind {
                CredentialType::AccessToken => BEARER,
                CredentialType::RefreshToken => REFRESH_TOKEN,
                CredentialType::ApiKey => API_KEY,
            },
            exp: valid.expires_at,
            iat: valid.issued_at,
            nbf: (!is_key).then_some(valid.not_before),
            aud: valid.aud,
            iss: (!is_key).then_some(valid.iss),
            jti: valid.jti,
        }
    }
}
