//! The token endpoint (RFC 6749 §3.2): authenticate the client, pick the grant,
//! let the grant decide.
//!
//! A request reaches the core already typed: [`GrantRequest`] has one variant
//! per grant, each with exactly the fields that grant needs, parsed once at the
//! edge by [`GrantRequest::parse`]. Adding a grant takes one variant here and
//! one file beside this one.

mod authorization_code;
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

/// A token request: who asks, and for which grant.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Who is asking.
    pub client: ClientCredentials,
    /// The grant, or why its parameters could not make one.
    pub grant: Result<GrantRequest, GrantParseError>,
    /// Where the request comes from, for the login throttle; `None` when the
    /// caller has no address (the password grant is then not throttled).
    pub origin: Option<LoginOrigin>,
}

/// One variant per grant, with what that grant needs and nothing else.
#[derive(Debug, Clone)]
pub enum GrantRequest {
    /// RFC 6749 §4.4.
    ClientCredentials {
        /// `scope`, if given and not blank.
        scope: Option<String>,
    },
    /// RFC 6749 §4.3.
    Password {
        /// `username`: the login name, email or phone number.
        username: String,
        /// `password`.
        password: Secret,
        /// `scope`, if given and not blank.
        scope: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// `refresh_token`.
        refresh_token: Secret,
        /// `scope`, if given and not blank.
        scope: Option<String>,
    },
    /// RFC 6749 §4.1.3, with RFC 7636's verifier.
    AuthorizationCode {
        /// `code`.
        code: Secret,
        /// `redirect_uri`, if given.
        redirect_uri: Option<String>,
        /// `code_verifier`, if given.
        code_verifier: Option<Secret>,
    },
}

/// The parameters a token request carries, as the form or the RPC has them:
/// absent and empty are the same (RFC 6749 §3.1).
#[derive(Debug, Clone, Default)]
pub struct GrantParameters {
    /// `grant_type`.
    pub grant_type: String,
    /// `scope`.
    pub scope: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
    /// `code`.
    pub code: Option<Secret>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `code_verifier`.
    pub code_verifier: Option<Secret>,
}

/// Why the parameters make no grant request. When each is reported is part of
/// the contract (see [`issue_token`]), so the core, not the edge, answers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantParseError {
    /// No `grant_type`: refused before anything else.
    MissingGrantType,
    /// A `grant_type` this server does not implement: refused once the client
    /// has authenticated.
    Unsupported(String),
    /// A known grant without a parameter it needs: refused once the client has
    /// authenticated and is known to be allowed the grant.
    Incomplete(GrantType, OAuthError),
}

impl GrantRequest {
    /// Types the parameters of a token request.
    pub fn parse(parameters: GrantParameters) -> Result<Self, GrantParseError> {
        let present = |value: Option<String>| value.filter(|text| !text.is_empty());
        let present_secret =
            |value: Option<Secret>| value.filter(|secret| !secret.expose().is_empty());
        if parameters.grant_type.is_empty() {
            return Err(GrantParseError::MissingGrantType);
        }
        let grant: GrantType = parameters
            .grant_type
            .parse()
            .map_err(|_| GrantParseError::Unsupported(parameters.grant_type))?;
        let incomplete = |error| GrantParseError::Incomplete(grant, error);
        // A blank scope counts as omitted.
        let scope = parameters.scope.filter(|text| !text.trim().is_empty());
        Ok(match grant {
            GrantType::ClientCredentials => Self::ClientCredentials { scope },
            GrantType::Password => Self::Password {
                username: present(parameters.username)
                    .ok_or_else(|| incomplete(OAuthError::missing_username()))?,
                // Unlike the others, an empty password is a password (a wrong
                // one), as it always was over gRPC; the form drops empty values.
                password: parameters
                    .password
                    .ok_or_else(|| incomplete(OAuthError::missing_parameter("password")))?,
                scope,
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: present_secret(parameters.refresh_token)
                    .ok_or_else(|| incomplete(OAuthError::missing_parameter("refresh_token")))?,
                scope,
            },
            // RFC 6749 §4.2: the implicit grant has no token request.
            GrantType::Implicit => {
                return Err(GrantParseError::Unsupported(grant.as_str().to_owned()));
            }
            GrantType::AuthorizationCode => Self::AuthorizationCode {
                code: present_secret(parameters.code)
                    .ok_or_else(|| incomplete(OAuthError::missing_parameter("code")))?,
                redirect_uri: present(parameters.redirect_uri),
                code_verifier: present_secret(parameters.code_verifier),
            },
        })
    }

    /// The grant type this request is for.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::Password { .. } => GrantType::Password,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
        }
    }
}

/// Handles a token request for any grant.
///
/// Order of checks: a request without `grant_type` is malformed before anything
/// else; then the client must authenticate (RFC 6749 §3.2.1), so that an
/// unauthenticated caller learns nothing about grants; then the grant type must be
/// known and allowed for this client; then the grant's own parameters are due.
pub async fn issue_token<S: Stores>(
    core: &Core<S>,
    request: TokenRequest,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    if matches!(request.grant, Err(GrantParseError::MissingGrantType)) {
        return Err(OAuthError::missing_parameter("grant_type"));
    }
    if !core.store.database_available() {
        return Err(OAuthError::TemporarilyUnavailable);
    }
    let client = authenticate(&core.store, &request.client).await?;
    let grant = match request.grant {
        Ok(grant) if client.allows(grant.grant_type()) => grant,
        Ok(grant) => return Err(OAuthError::grant_not_allowed(grant.grant_type().as_str())),
        Err(GrantParseError::Incomplete(grant, _)) if !client.allows(grant) => {
            return Err(OAuthError::grant_not_allowed(grant.as_str()));
        }
        Err(GrantParseError::Incomplete(_, error)) => return Err(error),
        Err(GrantParseError::Unsupported(grant_type)) => {
            return Err(OAuthError::unsupported_grant(&grant_type));
        }
        Err(GrantParseError::MissingGrantType) => {
            return Err(OAuthError::missing_parameter("grant_type"));
        }
    };
    // The password and refresh grants wait on Argon2 or the database and keep
    // large states across those waits. Boxed, they stay out of this future, which
    // every request moves several times on its way through tonic.
    match grant {
        GrantRequest::ClientCredentials { scope } => {
            client_credentials::issue(core, &client, scope.as_deref(), now).await
        }
        GrantRequest::Password {
            username,
            password,
            scope,
        } => {
            let attempt = super::user_auth::LoginAttempt {
                login: username,
                password,
                origin: request.origin,
            };
            Box::pin(password::issue(
                core,
                &client,
                attempt,
                scope.as_deref(),
                now,
            ))
            .await
        }
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            Box::pin(refresh_token::issue(
                core,
                &client,
                &refresh_token,
                scope.as_deref(),
                now,
            ))
            .await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let redemption = authorization_code::Redemption {
                code: &code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_ref().map(Secret::expose),
            };
            Box::pin(authorization_code::issue(core, &client, redemption, now)).await
        }
    }
}
