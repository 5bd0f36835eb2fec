//! Envoy's external authorization: `envoy.service.auth.v3.Authorization/Check`
//! (SPEC §9), the request check for a service mesh, beside `/oauth/check`.
//!
//! An adapter and nothing more: it reads the original request as Envoy
//! describes it, gathers its credentials from the places `/oauth/check` reads
//! (`oauth/check/carriers.rs`), lets `oauth/check` decide, and sends the same
//! worded answer (`CheckAnswer`) as a `CheckResponse`. A refusal is a
//! successful call whose status is not OK, with a `denied_response`: a failed
//! call would be an outage to Envoy, settled by its `failure_mode_allow` or
//! `status_on_error` rather than by us.
//!
//! # What Envoy sends
//! - Headers in `attributes.request.http.headers`, names lowercased and
//!   repeats joined; or, with the filter's `encode_raw_headers`, in
//!   `header_map`, each header apart, its value in `raw_value` as bytes. Both
//!   are read, and either field of a `HeaderValue`.
//! - The request target, path and query undecoded, in `path` (`query` stays
//!   empty). It is the original request's URI, so its `access_token` and
//!   `api_key` parameters count, as those of `X-Forwarded-Uri` do for
//!   `/oauth/check`; its `scope` does not, since requirements are the proxy
//!   configuration's to set.
//! - The body in `body` or `raw_body` when the filter sets
//!   `with_request_body`; its `access_token` field counts when the request is
//!   form-encoded.
//! - The scopes the route requires, in `context_extensions["scope"]`
//!   (space-separated). Envoy fills `context_extensions` from the route's (or
//!   virtual host's) `typed_per_filter_config` for `envoy.filters.http.ext_authz`:
//!   `check_settings.context_extensions`. SPEC §9 does not say where Envoy's
//!   requirement comes from; this is Envoy's own per-route mechanism, the
//!   counterpart of the `scope` query parameter that reverse proxies put on
//!   `/oauth/check`'s URL. Without it any valid credential is enough.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use super::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use super::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use super::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use super::pb::envoy::service::auth::v3::authorization_server::Authorization;
use super::pb::envoy::service::auth::v3::check_response::HttpResponse;
use super::pb::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use super::pb::envoy::r#type::v3::HttpStatus;
use super::token_service::REQUEST_DEADLINE;
use crate::clock;
use crate::oauth::Core;
use crate::oauth::check::{self, CheckAnswer, CheckOutcome, Checked, Denial, carriers};
use crate::oauth::error::OAuthError;
use crate::oauth::storage::Stores;

/// The service: the core in an `Arc`, shared with `TokenService`.
pub(crate) struct ExtAuthzImpl<S> {
    core: Arc<Core<S>>,
}

impl<S> ExtAuthzImpl<S> {
    /// Checks requests against `core`.
    pub(crate) fn new(core: Arc<Core<S>>) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl<S: Stores> Authorization for ExtAuthzImpl<S> {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let mut attributes = request.into_inner().attributes.unwrap_or_default();
        let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
        let request = check::CheckRequest {
            credentials: credentials(&http),
            required_scopes: attributes
                .context_extensions
                .remove("scope")
                .into_iter()
                .collect(),
        };
        let checked = tokio::time::timeout(
            REQUEST_DEADLINE,
            check::check(&self.core, &request, clock::now()),
        )
        .await
        .unwrap_or_else(|_| timed_out(&request));
        record(&checked);
        Ok(Response::new(check_response(&checked.outcome)))
    }
}

/// Every credential of the request, from both header forms, the target and a
/// form body.
fn credentials(http: &HttpRequest) -> Vec<String> {
    let mut credentials = Vec::new();
    let mut form_body = false;
    let mut read = |name: &str, value: &str| {
        carriers::header_credentials(name, value, &mut credentials);
        if name.eq_ignore_ascii_case("content-type") {
            form_body = carriers::is_form_media_type(value);
        }
    };
    for (name, value) in &http.headers {
        read(name, value);
    }
    for header in http.header_map.iter().flat_map(|map| &map.headers) {
        read(&header.key, &header_value(header));
    }
    credentials.extend(carriers::query_credentials(&http.path));
    let body = if http.raw_body.is_empty() {
        http.body.as_bytes()
    } else {
        &http.raw_body
    };
    if form_body {
        credentials.extend(carriers::form_credentials(body));
    }
    credentials
}

/// A header's value: `value`, or else `raw_value`. Bytes that are not UTF-8
/// become U+FFFD, which no credential contains: such a credential is malformed.
fn header_value(header: &HeaderValue) -> std::borrow::Cow<'_, str> {
    if header.value.is_empty() {
        String::from_utf8_lossy(&header.raw_value)
    } else {
        std::borrow::Cow::Borrowed(&header.value)
    }
}

/// The answer when the core has not decided within the deadline every call
/// has: the table's 503 row, rather than a call Envoy sees fail.
fn timed_out(request: &check::CheckRequest) -> Checked {
    Checked {
        outcome: CheckOutcome::Denied(Denial::Unavailable(OAuthError::TemporarilyUnavailable)),
        credential_kind: if request.credentials.is_empty() {
            "none"
        } else {
            "other"
        },
    }
}

/// Counts the check as `/oauth/check` does, and logs why it could not decide
/// (the cause, which the caller never sees); never a credential.
fn record(checked: &Checked) {
    let outcome = checked.outcome.label();
    let credential = checked.credential_kind;
    metrics::counter!("oauthd_checks_total",
        "transport" => "grpc", "outcome" => outcome, "credential" => credential)
    .increment(1);
    match &checked.outcome {
        CheckOutcome::Denied(Denial::Unavailable(err)) => {
            tracing::warn!(rpc = "Check", error = %err, "request check could not decide");
        }
        CheckOutcome::Denied(_) => tracing::debug!(rpc = "Check", outcome, credential, "refused"),
        CheckOutcome::Allowed(_) => {}
    }
}

/// The gRPC status of each row (SPEC §9).
fn grpc_code(denial: &Denial) -> Code {
    match denial {
        Denial::NoCredential | Denial::InvalidToken(_) => Code::Unauthenticated,
        Denial::InsufficientScope { .. } => Code::PermissionDenied,
        Denial::InvalidRequest(_) => Code::InvalidArgument,
        Denial::Unavailable(_) => Code::Unavailable,
    }
}

/// The decision as Envoy takes it: on OK, the six identity headers for the
/// upstream; otherwise the HTTP answer for the downstream client.
fn check_response(outcome: &CheckOutcome) -> CheckResponse {
    let (code, message, http_response) = match outcome {
        CheckOutcome::Allowed(valid) => (
            Code::Ok,
            String::new(),
            HttpResponse::OkResponse(OkHttpResponse {
                headers: CheckAnswer::identity_headers(valid)
                    .into_iter()
                    .map(|(name, value)| overwrite(name, value))
                    .collect(),
                headers_to_remove: Vec::new(),
            }),
        ),
        CheckOutcome::Denied(denial) => {
            let answer = CheckAnswer::of(outcome);
            let mut headers = Vec::with_capacity(3);
            if let Some(challenge) = answer.www_authenticate {
                headers.push(overwrite("www-authenticate", challenge));
            }
            headers.push(overwrite("content-type", "application/json".to_owned()));
            headers.push(overwrite("cache-control", "no-store".to_owned()));
            (
                grpc_code(denial),
                denial.description().unwrap_or_default().into_owned(),
                HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(answer.status),
                    }),
                    headers,
                    body: answer.body,
                }),
            )
        }
    };
    CheckResponse {
        status: Some(tonic_types::pb::Status {
            code: code as i32,
            message,
            details: Vec::new(),
        }),
        http_response: Some(http_response),
    }
}

/// A header that replaces any of its name, even when its value is empty (the
/// identity headers must overwrite whatever a client forged). Both switches
/// say so: `append`, which every Envoy reads and which wins when set, and
/// `append_action`, for an Envoy that no longer reads the older one.
fn overwrite(name: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append: Some(false),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::pb::envoy::config::core::v3::HeaderMap;

    #[test]
    fn both_header_forms_the_path_and_a_form_body_are_read() {
        let http = HttpRequest {
            headers: [("authorization".to_owned(), "Bearer one".to_owned())].into(),
            header_map: Some(HeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "x-api-key".into(),
                        value: String::new(),
                        raw_value: b"two".to_vec(),
                    },
                    HeaderValue {
                        key: "Content-Type".into(),
                        value: "application/x-www-form-urlencoded".into(),
                        raw_value: Vec::new(),
                    },
                ],
            }),
            path: "/api?api_key=three&scope=ignored".into(),
            raw_body: b"access_token=four".to_vec(),
            ..HttpRequest::default()
        };
        assert_eq!(credentials(&http), ["one", "two", "three", "four"]);
    }

    #[test]
    fn a_body_that_is_not_a_form_and_bytes_that_are_not_utf8_carry_no_good_credential() {
        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: "access_token".into(),
                    value: String::new(),
                    raw_value: vec![0xff, b'k'],
                }],
            }),
            body: "access_token=t".into(),
            ..HttpRequest::default()
        };
        assert_eq!(credentials(&http), ["\u{fffd}k"]);
    }

    #[test]
    fn each_row_has_its_grpc_code_and_http_status() {
        use crate::oauth::scope::ScopeSet;
        let rows = [
            (Denial::NoCredential, Code::Unauthenticated, 401),
            (Denial::InvalidToken("x"), Code::Unauthenticated, 401),
            (
                Denial::InsufficientScope {
                    required: ScopeSet::default(),
                },
                Code::PermissionDenied,
                403,
            ),
            (
                Denial::InvalidRequest("x".into()),
                Code::InvalidArgument,
                400,
            ),
            (
                Denial::Unavailable(OAuthError::TemporarilyUnavailable),
                Code::Unavailable,
                503,
            ),
        ];
        for (denial, code, http_status) in rows {
            let response = check_response(&CheckOutcome::Denied(denial));
            assert_eq!(response.status.unwrap().code, code as i32);
            let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
                panic!("not denied");
            };
            assert_eq!(denied.status.unwrap().code, http_status);
        }
    }
}
