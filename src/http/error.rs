//! `OAuthError` -> RFC 6749 §5.2 JSON, status and headers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::oauth::error::OAuthError;

/// An error answer of the shim.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub(crate) error: OAuthError,
    /// Whether the client tried HTTP Basic: a 401 then says how to authenticate.
    pub(crate) tried_basic: bool,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// RFC 6749 §5.1: token responses "MUST include" `Cache-Control: no-store` and
/// `Pragma: no-cache`; errors of the token endpoint get them too.
pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The HTTP status of an error: 401 for `invalid_client` (RFC 6749 §5.2), 503
/// when the database is down, 500 for the unexpected, 400 otherwise.
pub(crate) fn http_status(error: &OAuthError) -> StatusCode {
    match error {
        OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthError::TemporarilyUnavailable | OAuthError::Throttled { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::InvalidRequest(_)
        | OAuthError::InvalidGrant(_)
        | OAuthError::UnauthorizedClient(_)
        | OAuthError::UnsupportedGrantType(_)
        | OAuthError::InvalidScope(_) => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = http_status(&self.error);
        let body = ErrorBody {
            error: self.error.code(),
            error_description: self.error.description(),
        };
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        if status == StatusCode::UNAUTHORIZED && self.tried_basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauthd\""),
            );
        }
        retry_after(&mut response, &self.error);
        response.extensions_mut().insert(Outcome(self.error.code()));
        response
    }
}

/// `Retry-After` (RFC 9110 §10.2.3, delay-seconds) for a throttled login,
/// whichever way it was answered.
pub(crate) fn retry_after(response: &mut Response, error: &OAuthError) {
    if let OAuthError::Throttled { retry_after_secs } = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
}

/// The OAuth outcome of a request, for the access log and metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome(pub(crate) &'static str);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status() {
        let table = [
            (OAuthError::missing_parameter("grant_type"), 400),
            (OAuthError::InvalidClient, 401),
            (OAuthError::bad_credentials(), 400),
            (OAuthError::grant_not_allowed("password"), 400),
            (OAuthError::unsupported_grant("implicit"), 400),
            (OAuthError::scope_not_allowed("admin"), 400),
            (OAuthError::TemporarilyUnavailable, 503),
            (
                OAuthError::Throttled {
                    retry_after_secs: 5,
                },
                503,
            ),
            (OAuthError::internal_message("x"), 500),
        ];
        for (error, status) in table {
            assert_eq!(http_status(&error).as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn a_throttled_login_says_when_to_retry() {
        let throttled = HttpError {
            error: OAuthError::Throttled {
                retry_after_secs: 5,
            },
            tried_basic: false,
        }
        .into_response();
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "5");
        let unavailable = HttpError {
            error: OAuthError::TemporarilyUnavailable,
            tried_basic: false,
        }
        .into_response();
        assert!(!unavailable.headers().contains_key(header::RETRY_AFTER));
    }
}
