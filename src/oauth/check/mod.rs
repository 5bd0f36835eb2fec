//! The request check of SPEC §9: does a request to an API carry exactly one
//! valid credential that holds the required scopes, and whose is it?
//!
//! Reverse proxies (`/oauth/check`, `http/check.rs`) and Envoy (`Check`,
//! `grpc/ext_authz.rs`) pass the original request in their own dialects. Each
//! adapter only gathers the values it finds in the places clients put a
//! credential; this file decides, once for both. Every `Allowed` comes out of
//! the validator, which alone says whether a credential is good.

mod answer;
pub(crate) mod carriers;

use std::borrow::Cow;

pub(crate) use self::answer::CheckAnswer;

use super::Core;
use super::error::{OAuthError, check_descriptions};
use super::model::UnixTime;
use super::presented::{Presented, classify};
use super::scope::ScopeSet;
use super::storage::Stores;
use super::validate::{Accepted, ValidCredential, validate_accepted};
use crate::tokens::credential::CredentialKind;

/// What a request carries, as an adapter gathered it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckRequest {
    /// Every credential value found, from every carrier, in any order. The
    /// same value in two places counts once.
    pub(crate) credentials: Vec<String>,
    /// The `scope` values the check was configured with (space-separated
    /// lists); the credential must hold every scope of all of them.
    pub(crate) required_scopes: Vec<String>,
}

/// The decision on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    /// One valid credential with every required scope: who it stands for.
    Allowed(Box<ValidCredential>),
    /// Refused; the adapter words it for its proxy.
    Denied(Denial),
}

/// Why a request is refused, one variant per row of the SPEC §9 table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No credential at all: RFC 6750 §3.1 says to send no error code then.
    NoCredential,
    /// Malformed, unknown, expired, revoked, or its client or user no longer
    /// allowed (RFC 6750 `invalid_token`).
    InvalidToken(&'static str),
    /// Valid, but without every required scope (RFC 6750
    /// `insufficient_scope`); `required` is what the request needs.
    InsufficientScope {
        /// Every scope the check requires.
        required: ScopeSet,
    },
    /// Two different credentials, or a malformed scope requirement (RFC 6750
    /// `invalid_request`).
    InvalidRequest(Cow<'static, str>),
    /// The check needs the database and it does not answer, or failed in an
    /// unexpected way; the cause is for the log.
    Unavailable(OAuthError),
}

impl Denial {
    /// The RFC 6750 §3.1 error code; none for a request with no credential,
    /// and none for an outage, which is not the client's to fix.
    pub(crate) fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::NoCredential | Self::Unavailable(_) => None,
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            Self::InvalidRequest(_) => Some("invalid_request"),
        }
    }

    /// The `error_description`, where there is an error to describe.
    pub(crate) fn description(&self) -> Option<Cow<'static, str>> {
        match self {
            Self::NoCredential => None,
            Self::InvalidToken(text) => Some(Cow::Borrowed(text)),
            Self::InsufficientScope { required } => {
                Some(check_descriptions::insufficient_scope(required).into())
            }
            Self::InvalidRequest(text) => Some(text.clone()),
            // The client may retry; the cause stays in the log.
            Self::Unavailable(_) => Some(
                OAuthError::TemporarilyUnavailable
                    .description()
                    .to_owned()
                    .into(),
            ),
        }
    }

    /// A metric label for the row.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::NoCredential => "no_credential",
            Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl CheckOutcome {
    /// A metric label for the outcome.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Allowed(_) => "allowed",
            Self::Denied(denial) => denial.label(),
        }
    }
}

/// A decision, with what kind of credential it was about, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    /// The decision.
    pub(crate) outcome: CheckOutcome,
    /// `jwt`, `opaque_token`, `api_key`, `other` (anything else presented) or
    /// `none`; a fixed set, so clients cannot make up metric series.
    pub(crate) credential_kind: &'static str,
}

/// Decides on `request` at `now`.
pub(crate) async fn check<S: Stores>(
    core: &Core<S>,
    request: &CheckRequest,
    now: UnixTime,
) -> Checked {
    let mut presented: Vec<&str> = Vec::new();
    for value in &request.credentials {
        if !presented.contains(&value.as_str()) {
            presented.push(value);
        }
    }
    let credential_kind = match presented.as_slice() {
        [] => "none",
        [one] => kind_label(one),
        _ => "other",
    };
    let outcome = decide(core, &presented, &request.required_scopes, now).await;
    Checked {
        outcome,
        credential_kind,
    }
}

async fn decide<S: Stores>(
    core: &Core<S>,
    presented: &[&str],
    required_scopes: &[String],
    now: UnixTime,
) -> CheckOutcome {
    let denied = CheckOutcome::Denied;
    let mut required = ScopeSet::default();
    for scopes in required_scopes {
        match ScopeSet::parse(scopes) {
            Ok(scopes) => required.extend(scopes),
            Err(err) => return denied(Denial::InvalidRequest(err.description().to_owned().into())),
        }
    }
    let credential = match presented {
        [] => return denied(Denial::NoCredential),
        [one] => *one,
        _ => {
            return denied(Denial::InvalidRequest(
                check_descriptions::TWO_CREDENTIALS.into(),
            ));
        }
    };
    let valid =
        match validate_accepted(core, credential, None, Accepted::RequestCredential, now).await {
            Ok(Ok(valid)) => valid,
            Ok(Err(invalid)) => {
                return denied(Denial::InvalidToken(check_descriptions::invalid(invalid)));
            }
            Err(err) => return denied(Denial::Unavailable(err)),
        };
    if !required.is_subset_of(&valid.scope) {
        return denied(Denial::InsufficientScope { required });
    }
    CheckOutcome::Allowed(Box::new(valid))
}

fn kind_label(value: &str) -> &'static str {
    match classify(value) {
        Presented::Jwt(_) => "jwt",
        Presented::Credential(CredentialKind::AccessToken, _) | Presented::Legacy(_) => {
            "opaque_token"
        }
        Presented::Credential(CredentialKind::ApiKey, _) => "api_key",
        Presented::Credential(..) | Presented::Malformed => "other",
    }
}
