//! `OAuthError`: the RFC 6749 §5.2 error codes and the exact descriptions of SPEC §4.
//!
//! Every description a client can see is written in this file and nowhere else.
//! A description that names a request value quotes it through [`Quoted`]: a
//! short, sanitised prefix, never the value whole.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::echo::Quoted;
use super::storage::StoreError;

/// Description of `invalid_client`, whatever the cause: unknown client, wrong secret,
/// disabled client. One text for all, so a caller cannot probe which ids exist.
pub const BAD_CLIENT_CREDENTIALS: &str = "Bad client credentials";

/// An error a client can be told about, one variant per RFC code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2 `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// RFC 6749 §5.2 `invalid_client`; always described as [`BAD_CLIENT_CREDENTIALS`].
    #[error("invalid_client")]
    InvalidClient,
    /// RFC 6749 §5.2 `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(Cow<'static, str>),
    /// RFC 6749 §5.2 `unauthorized_client`.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Cow<'static, str>),
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Cow<'static, str>),
    /// RFC 6749 §5.2 `invalid_scope`.
    #[error("invalid_scope: {0}")]
    InvalidScope(Cow<'static, str>),
    /// RFC 6749 §4.1.2.1 `temporarily_unavailable`: the database does not answer.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable,
    /// `temporarily_unavailable` for one client address after repeated failed
    /// logins (`oauth::login_throttle`): try again after `retry_after_secs`.
    #[error("temporarily_unavailable: throttled for {retry_after_secs} s")]
    Throttled {
        /// Seconds to wait, for `Retry-After` (HTTP) or `RetryInfo` (gRPC).
        retry_after_secs: u64,
    },
    /// Anything unexpected. The cause is for the log only, never for the client.
    #[error("internal error: {0}")]
    Internal(InternalCause),
}

/// What went wrong inside, kept whole (with its own source chain) so that the
/// edge can log it once; never shown to a client.
#[derive(Clone)]
pub struct InternalCause(Arc<dyn std::error::Error + Send + Sync>);

impl InternalCause {
    /// The underlying error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for InternalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for InternalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Two causes are equal when they read the same: errors are compared in tests,
/// never to decide anything.
impl PartialEq for InternalCause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for InternalCause {}

/// A cause that is only a message, for invariants broken inside oauthd itself.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl OAuthError {
    /// `server_error` caused by `err`, which only the log will see.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(InternalCause(Arc::new(err)))
    }

    /// `server_error` for a broken invariant that has no error value of its own.
    pub fn internal_message(message: impl Into<String>) -> Self {
        Self::internal(Message(message.into()))
    }

    /// `invalid_request` for a parameter that is required but absent or empty.
    pub fn missing_parameter(name: &str) -> Self {
        Self::InvalidRequest(format!("Missing required parameter: {}", Quoted(name)).into())
    }

    /// `invalid_request` for a parameter given more than once (RFC 6749 §3.2).
    pub fn repeated_parameter(name: &str) -> Self {
        Self::InvalidRequest(format!("Parameter given more than once: {}", Quoted(name)).into())
    }

    /// `invalid_request` when a client authenticates in the header and in the body.
    pub fn multiple_client_authentications() -> Self {
        Self::InvalidRequest(
            "Client credentials were sent both in the Authorization header and as \
             client_id/client_secret parameters; use one method"
                .into(),
        )
    }

    /// The password grant without `username`; the text is the SPEC's, word for word.
    pub fn missing_username() -> Self {
        Self::InvalidRequest("An authorization username must be supplied.".into())
    }

    /// Wrong username or password.
    pub fn bad_credentials() -> Self {
        Self::InvalidGrant("Bad credentials".into())
    }

    /// The user is locked, by an administrator or after too many failed logins.
    pub fn user_locked() -> Self {
        Self::InvalidGrant("User is locked".into())
    }

    /// The user is disabled.
    pub fn user_disabled() -> Self {
        Self::InvalidGrant("User is disabled".into())
    }

    /// The user's password has expired.
    pub fn password_expired() -> Self {
        Self::InvalidGrant("Password has expired".into())
    }

    /// The client may not use this grant type.
    pub fn grant_not_allowed(grant_type: &str) -> Self {
        Self::UnauthorizedClient(
            format!(
                "The client is not allowed to use the grant type {}",
                Quoted(grant_type)
            )
            .into(),
        )
    }

    /// The grant type is not one this server knows.
    pub fn unsupported_grant(grant_type: &str) -> Self {
        Self::UnsupportedGrantType(format!("Unsupported grant type: {}", Quoted(grant_type)).into())
    }

    /// A requested scope the client may not have.
    pub fn scope_not_allowed(scope: &str) -> Self {
        Self::InvalidScope(format!("Scope not allowed for this client: {}", Quoted(scope)).into())
    }

    /// A refresh asked for a scope the original grant did not include (RFC 6749 §6).
    pub fn scope_wider_than_grant(scope: &str) -> Self {
        Self::InvalidScope(format!("Scope exceeds the original grant: {}", Quoted(scope)).into())
    }

    /// A scope that breaks the RFC 6749 §3.3 `scope-token` syntax.
    pub fn malformed_scope(scope: &str) -> Self {
        Self::InvalidScope(format!("Malformed scope: {}", Quoted(scope)).into())
    }

    /// A refresh token that is not one this server issued (or a made-up one).
    pub fn refresh_token_invalid() -> Self {
        Self::InvalidGrant("Refresh token is invalid".into())
    }

    /// A refresh token presented by a client it was not issued to (RFC 6749 §6).
    pub fn refresh_token_of_another_client() -> Self {
        Self::InvalidGrant("Refresh token was issued to another client".into())
    }

    /// A refresh token that was revoked, alone or with its family.
    pub fn refresh_token_revoked() -> Self {
        Self::InvalidGrant("Refresh token has been revoked".into())
    }

    /// A refresh token past its expiry.
    pub fn refresh_token_expired() -> Self {
        Self::InvalidGrant("Refresh token has expired".into())
    }

    /// A refresh token presented again after it was exchanged (RFC 9700 §4.14.2).
    pub fn refresh_token_already_used() -> Self {
        Self::InvalidGrant("Refresh token has already been used".into())
    }

    /// An authorization code that is not one this server issued.
    pub fn code_invalid() -> Self {
        Self::InvalidGrant("Authorization code is invalid".into())
    }

    /// A code presented by a client it was not issued to (RFC 6749 §4.1.3).
    pub fn code_of_another_client() -> Self {
        Self::InvalidGrant("Authorization code was issued to another client".into())
    }

    /// A code past `--authorization-code-ttl`.
    pub fn code_expired() -> Self {
        Self::InvalidGrant("Authorization code has expired".into())
    }

    /// A code presented again after it was redeemed (RFC 6749 §4.1.2).
    pub fn code_already_used() -> Self {
        Self::InvalidGrant("Authorization code has already been used".into())
    }

    /// A `redirect_uri` other than the authorization request's (RFC 6749 §4.1.3).
    pub fn redirect_uri_mismatch() -> Self {
        Self::InvalidGrant(
            "redirect_uri does not match the one of the authorization request".into(),
        )
    }

    /// No `code_verifier` for a code issued with a PKCE challenge (RFC 7636 §4.5).
    pub fn code_verifier_missing() -> Self {
        Self::InvalidGrant(
            "code_verifier is required: the authorization request had a code_challenge".into(),
        )
    }

    /// A `code_verifier` for a code issued without a challenge (RFC 9700 §4.8.2).
    pub fn code_verifier_unexpected() -> Self {
        Self::InvalidGrant(
            "code_verifier was sent, but the authorization request had no code_challenge".into(),
        )
    }

    /// A `code_verifier` outside RFC 7636 §4.1's syntax.
    pub fn code_verifier_malformed() -> Self {
        Self::InvalidGrant(
            "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"
                .into(),
        )
    }

    /// A `code_verifier` whose S256 hash is not the code's challenge.
    pub fn code_verifier_mismatch() -> Self {
        Self::InvalidGrant("code_verifier does not match the code_challenge".into())
    }

    /// RFC 7009 §2.1: a revocation of a token issued to another client is refused.
    pub fn token_of_another_client() -> Self {
        Self::UnauthorizedClient("The token was not issued to this client".into())
    }

    /// A form body that could not be read to its end.
    pub fn unreadable_body() -> Self {
        Self::InvalidRequest("The request body could not be read".into())
    }

    /// A body over the 64 KiB limit (SPEC §4), found while reading it or declared.
    pub fn body_too_large() -> Self {
        Self::InvalidRequest("The request body is larger than 64 KiB".into())
    }

    /// A body that is not `application/x-www-form-urlencoded` (RFC 6749 §3.2).
    pub fn not_a_form() -> Self {
        Self::InvalidRequest("The request body must be application/x-www-form-urlencoded".into())
    }

    /// A form with a `%` not followed by two hex digits.
    pub fn malformed_percent_encoding() -> Self {
        Self::InvalidRequest("Malformed percent-encoding in the request".into())
    }

    /// A form whose decoded bytes are not UTF-8.
    pub fn not_utf8() -> Self {
        Self::InvalidRequest("The request is not valid UTF-8".into())
    }

    /// A gRPC request message that is not a valid encoding of the RPC's request:
    /// broken protobuf, or a string field that is not UTF-8. The decoder's own
    /// text stays out; it describes the decoder, not the caller's mistake.
    pub fn undecodable_message() -> Self {
        Self::InvalidRequest("The request message could not be decoded".into())
    }

    /// A gRPC request message longer than the service accepts, refused from its
    /// length prefix before it is read.
    pub fn message_too_large(limit_bytes: usize) -> Self {
        let limit = if limit_bytes.is_multiple_of(1024) {
            format!("{} KiB", limit_bytes / 1024)
        } else {
            format!("{limit_bytes} bytes")
        };
        Self::InvalidRequest(format!("The request message is larger than {limit}").into())
    }

    /// The RFC 6749 §5.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::TemporarilyUnavailable | Self::Throttled { .. } => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    /// The `error_description` a client sees. Internal causes never appear here.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(text)
            | Self::InvalidGrant(text)
            | Self::UnauthorizedClient(text)
            | Self::UnsupportedGrantType(text)
            | Self::InvalidScope(text) => text,
            Self::InvalidClient => BAD_CLIENT_CREDENTIALS,
            Self::TemporarilyUnavailable => {
                "The service is temporarily unavailable, try again later"
            }
            Self::Throttled { .. } => "Too many login attempts from this address, try again later",
            Self::Internal(_) => "The server encountered an unexpected error",
        }
    }

    /// Rebuilds an error from its code and description, as they travel over gRPC.
    /// Unknown codes come back as `Internal`.
    pub fn from_parts(code: &str, description: &str) -> Self {
        let text: Cow<'static, str> = description.to_owned().into();
        match code {
            "invalid_request" => Self::InvalidRequest(text),
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant(text),
            "unauthorized_client" => Self::UnauthorizedClient(text),
            "unsupported_grant_type" => Self::UnsupportedGrantType(text),
            "invalid_scope" => Self::InvalidScope(text),
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::internal_message(format!("unknown error code {other}")),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::TemporarilyUnavailable,
            other @ (StoreError::Conflict(_) | StoreError::Other(_)) => Self::internal(other),
        }
    }
}

/// The descriptions of the request check (SPEC §9), which answers in RFC
/// 6750's terms rather than RFC 6749's.
pub(crate) mod check_descriptions {
    use super::super::scope::ScopeSet;
    use super::super::validate::Invalid;

    /// Two different credentials in one request.
    pub(crate) const TWO_CREDENTIALS: &str =
        "The request carries more than one credential; send exactly one";

    /// Why a presented credential is not valid.
    pub(crate) fn invalid(reason: Invalid) -> &'static str {
        match reason {
            Invalid::Malformed => "The credential is malformed",
            Invalid::Unknown => "The credential is unknown",
            Invalid::Expired => "The credential has expired",
            Invalid::NotYetValid => "The credential is not valid yet",
            Invalid::Revoked => "The credential has been revoked",
            Invalid::AlreadyUsed => "The credential has already been used",
            Invalid::ClientDisabled => "The credential's client is disabled or deleted",
            Invalid::UserLocked => "The credential's user is locked",
            Invalid::UserDisabled => "The credential's user is disabled",
            Invalid::NotAccepted => "Only an access token or an API key is accepted here",
        }
    }

    /// A valid credential without every scope the request needs.
    pub(crate) fn insufficient_scope(required: &ScopeSet) -> String {
        format!("The credential does not hold every required scope: {required}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<OAuthError> {
        vec![
            OAuthError::missing_parameter("grant_type"),
            OAuthError::InvalidClient,
            OAuthError::bad_credentials(),
            OAuthError::grant_not_allowed("password"),
            OAuthError::unsupported_grant("implicit"),
            OAuthError::scope_not_allowed("admin"),
            OAuthError::TemporarilyUnavailable,
            OAuthError::internal_message("secret cause"),
        ]
    }

    #[test]
    fn every_error_survives_a_round_trip_through_its_parts() {
        for err in every_variant() {
            let back = OAuthError::from_parts(err.code(), err.description());
            match err {
                OAuthError::Internal(_) => assert!(matches!(back, OAuthError::Internal(_))),
                _ => assert_eq!(back, err),
            }
        }
    }

    #[test]
    fn a_throttled_login_is_temporarily_unavailable_with_its_own_description() {
        let err = OAuthError::Throttled {
            retry_after_secs: 7,
        };
        assert_eq!(err.code(), "temporarily_unavailable");
        assert_ne!(
            err.description(),
            OAuthError::TemporarilyUnavailable.description()
        );
        // The code and description alone lose the delay; gRPC carries it in a
        // RetryInfo detail (grpc/status.rs).
        assert_eq!(
            OAuthError::from_parts(err.code(), err.description()),
            OAuthError::TemporarilyUnavailable
        );
    }

    #[test]
    fn internal_causes_never_reach_the_description() {
        let err = OAuthError::internal_message("connection string postgres://secret");
        assert!(!err.description().contains("secret"));
    }

    #[test]
    fn descriptions_quote_a_short_sanitised_prefix_of_request_values() {
        let huge = "x".repeat(1 << 20);
        let quoting: [fn(&str) -> OAuthError; 7] = [
            OAuthError::missing_parameter,
            OAuthError::repeated_parameter,
            OAuthError::grant_not_allowed,
            OAuthError::unsupported_grant,
            OAuthError::scope_not_allowed,
            OAuthError::scope_wider_than_grant,
            OAuthError::malformed_scope,
        ];
        for make in quoting {
            let long = make(&huge);
            assert!(long.description().len() < 128, "{}", long.description());
            assert!(
                long.description().ends_with("x..."),
                "{}",
                long.description()
            );
            let odd = make("a\"b\\c\u{0}d\r\ne\u{e9}");
            assert!(
                odd.description().ends_with("a?b?c?d??e?"),
                "{}",
                odd.description()
            );
            assert!(
                odd.description()
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{}",
                odd.description()
            );
        }
    }

    #[test]
    fn descriptions_of_ordinary_values_are_unchanged() {
        assert_eq!(
            OAuthError::unsupported_grant("implicit").description(),
            "Unsupported grant type: implicit"
        );
        assert_eq!(
            OAuthError::scope_not_allowed("admin").description(),
            "Scope not allowed for this client: admin"
        );
        assert_eq!(
            OAuthError::repeated_parameter("scope").description(),
            "Parameter given more than once: scope"
        );
        assert_eq!(
            OAuthError::missing_parameter("grant_type").description(),
            "Missing required parameter: grant_type"
        );
        assert_eq!(
            OAuthError::grant_not_allowed("password").description(),
            "The client is not allowed to use the grant type password"
        );
    }

    #[test]
    fn message_limits_are_described_in_kib_when_they_are_whole() {
        assert_eq!(
            OAuthError::message_too_large(64 * 1024).description(),
            "The request message is larger than 64 KiB"
        );
        assert_eq!(
            OAuthError::message_too_large(1000).description(),
            "The request message is larger than 1000 bytes"
        );
    }

    #[test]
    fn spec_descriptions_are_word_for_word() {
        assert_eq!(
            OAuthError::missing_username().description(),
            "An authorization username must be supplied."
        );
        assert_eq!(
            OAuthError::bad_credentials().description(),
            "Bad credentials"
        );
        assert_eq!(OAuthError::user_locked().description(), "User is locked");
        assert_eq!(
            OAuthError::user_disabled().description(),
            "User is disabled"
        );
        assert_eq!(
            OAuthError::password_expired().description(),
            "Password has expired"
        );
        assert_eq!(
            OAuthError::InvalidClient.description(),
            "Bad client credentials"
        );
    }
}

/// An error of the authorization endpoint (RFC 6749 §4.1.2.1, §4.2.2.1; OpenID
/// Connect's `login_required` and `consent_required` for `prompt=none`): sent
/// back to the client on its redirect URI, never shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationError {
    /// The `error` parameter.
    pub code: &'static str,
    /// The `error_description` parameter.
    pub description: Cow<'static, str>,
}

impl AuthorizationError {
    fn new(code: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// A parameter the request must carry is missing.
    pub fn missing_parameter(name: &str) -> Self {
        OAuthError::missing_parameter(name).into()
    }

    /// A parameter was given more than once.
    pub fn repeated_parameter(name: &str) -> Self {
        OAuthError::repeated_parameter(name).into()
    }

    /// A parameter whose value is not valid.
    pub fn malformed_parameter(name: &str) -> Self {
        Self::new(
            "invalid_request",
            format!("Malformed parameter: {}", Quoted(name)),
        )
    }

    /// A `state` longer than this server echoes.
    pub fn state_too_long(limit_bytes: usize) -> Self {
        Self::new(
            "invalid_request",
            format!("state is longer than {limit_bytes} bytes"),
        )
    }

    /// `code_challenge_method` other than `S256`.
    pub fn pkce_method_unsupported() -> Self {
        Self::new(
            "invalid_request",
            "code_challenge_method must be S256; plain is not supported",
        )
    }

    /// A code request without the PKCE challenge the client must send.
    pub fn pkce_required() -> Self {
        Self::new(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        )
    }

    /// A `code_challenge` that cannot be an S256 challenge.
    pub fn pkce_challenge_malformed() -> Self {
        Self::new(
            "invalid_request",
            "code_challenge must be 43 characters of base64url (S256)",
        )
    }

    /// `prompt=none` combined with another value, or an unknown value.
    pub fn prompt_invalid() -> Self {
        Self::new(
            "invalid_request",
            "prompt must be none, or any of login and consent",
        )
    }

    /// A `response_type` other than `code` and `token`.
    pub fn unsupported_response_type(response_type: &str) -> Self {
        Self::new(
            "unsupported_response_type",
            format!("Unsupported response type: {}", Quoted(response_type)),
        )
    }

    /// The client may not use this response type.
    pub fn response_type_not_allowed(response_type: &str) -> Self {
        Self::new(
            "unauthorized_client",
            format!(
                "The client is not allowed to use the response type {}",
                Quoted(response_type)
            ),
        )
    }

    /// The user declined on the consent page.
    pub fn access_denied() -> Self {
        Self::new("access_denied", "The user denied the request")
    }

    /// `prompt=none`, and the user would have to log in.
    pub fn login_required() -> Self {
        Self::new("login_required", "The user must log in")
    }

    /// `prompt=none`, and the user would have to approve the scopes.
    pub fn consent_required() -> Self {
        Self::new(
            "consent_required",
            "The user must approve the requested scopes",
        )
    }
}

/// A token-endpoint error met while authorizing keeps its code where the
/// authorization endpoint has it (`invalid_scope`, `temporarily_unavailable`,
/// `server_error`, ...) and its description.
impl From<OAuthError> for AuthorizationError {
    fn from(err: OAuthError) -> Self {
        Self {
            code: err.code(),
            description: err.description().to_owned().into(),
        }
    }
}

/// Why `/oauth/authorize` answers with its own error page instead of a
/// redirect: until the client and its redirect URI are known good, sending the
/// user anywhere would be an open redirect (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizePageError {
    /// No `client_id`.
    MissingClientId,
    /// `client_id` given more than once or not decodable.
    MalformedClientId,
    /// No enabled client has this id.
    UnknownClient,
    /// No `redirect_uri`, and the client registered more than one.
    MissingRedirectUri,
    /// `redirect_uri` given more than once or not decodable.
    MalformedRedirectUri,
    /// A `redirect_uri` the client did not register.
    UnregisteredRedirectUri,
    /// The database does not answer, so the client cannot be checked.
    Unavailable,
}

impl AuthorizePageError {
    /// What the page says.
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingClientId => "The request has no client_id.",
            Self::MalformedClientId => "The request's client_id is repeated or malformed.",
            Self::UnknownClient => "The client is unknown or disabled.",
            Self::MissingRedirectUri => {
                "The request has no redirect_uri, and the client registered more than one."
            }
            Self::MalformedRedirectUri => "The request's redirect_uri is repeated or malformed.",
            Self::UnregisteredRedirectUri => "The redirect_uri is not one the client registered.",
            Self::Unavailable => "The service is temporarily unavailable, try again later.",
        }
    }
}
