//! The token endpoint (RFC 6749 §3.2): authenticate the client, pick the grant,
//! let the grant decide.

mod client_credentials;
mod password;
mod refresh_token;

use super::Core;
use super::client_auth::{ClientCredentials, authenticate};
use super::error::OAuthError;
use super::login_throttle::LoginOrigin;
use super::model::{GrantType, UnixTime};
use super::storage::Stores;
use crate::tokens::secret::Secret;

pub use super::issuance::IssuedTokens;

/// A token request as the form (or the RPC) carries it.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Who is asking.
    pub client: ClientCredentials,
    /// `grant_type`.
    pub grant_type: String,
    /// `scope`, if given.
    pub scope: Option<String>,
    /// `username`, for the password grant.
    pub username: Option<String>,
    /// `password`, for the password grant.
    pub password: Option<Secret>,
    /// `refresh_token`, for the refresh grant.
    pub refresh_token: Option<Secret>,
    /// Where the request comes from, for the login throttle; `None` when the
    /// caller has no address (the password grant is then not throttled).
    pub origin: Option<LoginOrigin>,
}

/// Handles a token request for any grant.
///
/// Order of checks: a request without `grant_type` is malformed before anything
/// else; then the client must authenticate (RFC 6749 §3.2.1), so that an
/// unauthenticated caller learns nothing about grants; then the grant type must be
/// known and allowed for this client.
pub async fn issue_token<S: Stores>(
    core: &Core<S>,
    request: TokenRequest,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    if request.grant_type.is_empty() {
        return Err(OAuthError::missing_parameter("grant_type"));
    }
    if !core.store.database_available() {
        return Err(OAuthError::TemporarilyUnavailable);
    }
    let client = authenticate(&core.store, &request.client).await?;
    let grant: GrantType = request
        .grant_type
        .parse()
        .map_err(|_| OAuthError::unsupported_grant(&request.grant_type))?;
    if !client.allows(grant) {
        return Err(OAuthError::grant_not_allowed(grant.as_str()));
    }
    let scope = request.scope.as_deref();
    // The password and refresh grants wait on Argon2 or the database and keep
    // large states across those waits. Boxed, they stay out of this future, which
    // every request moves several times on its way through tonic.
    match grant {
        GrantType::ClientCredentials => client_credentials::issue(core, &client, scope, now).await,
        GrantType::Password => {
            Box::pin(password::issue(
                core,
                &client,
                password::Login {
                    username: request.username,
                    password: request.password,
                    origin: request.origin,
                },
                scope,
                now,
            ))
            .await
        }
        GrantType::RefreshToken => {
            Box::pin(refresh_token::issue(
                core,
                &client,
                request.refresh_token,
                scope,
                now,
            ))
            .await
        }
    }
}
