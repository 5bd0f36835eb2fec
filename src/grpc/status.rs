//! `OAuthError` <-> `tonic::Status`, as SPEC §6 says: the OAuth code travels as
//! `google.rpc.ErrorInfo` (reason = the code, domain = `oauthd`), the description
//! as the status message.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::oauth::error::OAuthError;

/// `ErrorInfo.domain` of every oauthd error.
pub(crate) const ERROR_DOMAIN: &str = "oauthd";

/// The gRPC code for an OAuth error (SPEC §6).
pub(crate) fn grpc_code(err: &OAuthError) -> Code {
    match err {
        OAuthError::InvalidClient => Code::Unauthenticated,
        OAuthError::UnauthorizedClient(_) => Code::PermissionDenied,
        OAuthError::InvalidRequest(_)
        | OAuthError::InvalidGrant(_)
        | OAuthError::InvalidScope(_)
        | OAuthError::UnsupportedGrantType(_) => Code::InvalidArgument,
        OAuthError::TemporarilyUnavailable | OAuthError::Throttled { .. } => Code::Unavailable,
        OAuthError::Internal(_) => Code::Internal,
    }
}

/// The status for an error. An internal cause is not included. A throttled
/// login also carries `google.rpc.RetryInfo` with the delay.
pub(crate) fn to_status(err: &OAuthError) -> Status {
    let mut details = ErrorDetails::with_error_info(err.code(), ERROR_DOMAIN, HashMap::new());
    if let OAuthError::Throttled { retry_after_secs } = err {
        details.set_retry_info(Some(Duration::from_secs(*retry_after_secs)));
    }
    Status::with_error_details(grpc_code(err), err.description(), details)
}

/// The error a status stands for; the HTTP shim uses it to answer in RFC 6749's
/// terms. A status without oauthd's `ErrorInfo` (from tonic itself, say) maps by
/// its code.
pub(crate) fn from_status(status: &Status) -> OAuthError {
    match status.get_details_error_info() {
        Some(info) if info.domain == ERROR_DOMAIN => {
            match OAuthError::from_parts(&info.reason, status.message()) {
                OAuthError::TemporarilyUnavailable => status
                    .get_details_retry_info()
                    .and_then(|retry| retry.retry_delay)
                    .map_or(OAuthError::TemporarilyUnavailable, |delay| {
                        OAuthError::Throttled {
                            retry_after_secs: delay.as_secs().max(1),
                        }
                    }),
                other => other,
            }
        }
        _ => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => OAuthError::TemporarilyUnavailable,
            Code::InvalidArgument => OAuthError::InvalidRequest(status.message().to_owned().into()),
            other => OAuthError::internal_message(format!("unexpected gRPC status {other:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_spec_code_and_back() {
        let table = [
            (
                OAuthError::missing_parameter("grant_type"),
                Code::InvalidArgument,
            ),
            (OAuthError::InvalidClient, Code::Unauthenticated),
            (
                OAuthError::grant_not_allowed("password"),
                Code::PermissionDenied,
            ),
            (OAuthError::bad_credentials(), Code::InvalidArgument),
            (
                OAuthError::scope_not_allowed("admin"),
                Code::InvalidArgument,
            ),
            (
                OAuthError::unsupported_grant("implicit"),
                Code::InvalidArgument,
            ),
            (OAuthError::TemporarilyUnavailable, Code::Unavailable),
            (
                OAuthError::Throttled {
                    retry_after_secs: 42,
                },
                Code::Unavailable,
            ),
        ];
        for (err, code) in table {
            let status = to_status(&err);
            assert_eq!(status.code(), code, "{err:?}");
            assert_eq!(status.message(), err.description());
            let info = status.get_details_error_info().unwrap();
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (err.code(), "oauthd")
            );
            assert_eq!(from_status(&status), err);
        }
    }

    #[test]
    fn a_throttled_login_carries_its_delay_as_retry_info() {
        let status = to_status(&OAuthError::Throttled {
            retry_after_secs: 42,
        });
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(42)));
        assert!(
            to_status(&OAuthError::TemporarilyUnavailable)
                .get_details_retry_info()
                .is_none()
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = to_status(&OAuthError::internal_message("disk /var/lib/x failed"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk"));
    }
}
