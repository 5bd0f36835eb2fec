//! `/oauth/check` (SPEC §9), any method: the forward-auth endpoint of nginx
//! `auth_request`, Traefik `forwardAuth` and Caddy `forward_auth`. It gathers
//! the credentials a request carries in every place clients put one, lets the
//! core decide (`oauth::check`), and sends the worded answer.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::Response;

use super::form::is_form_content_type;
use super::routes::{HttpState, ShimStore};
use crate::clock;
use crate::oauth::check::{CheckAnswer, CheckOutcome, CheckRequest, Denial, carriers, check};

pub(crate) async fn check_request<S: ShimStore>(
    State(state): State<HttpState<S>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = gather(&uri, &headers, body.ok().as_deref());
    let checked = check(state.service.core(), &request, clock::now()).await;
    if let CheckOutcome::Denied(Denial::Unavailable(err)) = &checked.outcome {
        tracing::warn!(error = %err, "request check could not decide");
    }
    metrics::counter!("oauthd_checks_total",
        "transport" => "http", "outcome" => checked.outcome.label(),
        "credential" => checked.credential_kind)
    .increment(1);
    render(CheckAnswer::of(&checked.outcome))
}

/// Every credential and scope requirement of the request (SPEC §9's list;
/// the places are `oauth/check/carriers.rs`'s, shared with Envoy's `Check`).
pub(crate) fn gather(uri: &Uri, headers: &HeaderMap, body: Option<&[u8]>) -> CheckRequest {
    let mut request = CheckRequest::default();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        carriers::header_credentials(name.as_str(), &value, &mut request.credentials);
    }
    // The check URL's own query: credentials, and the scopes to require. The
    // original request's query (in the headers above) gives credentials only,
    // never requirements, which are the proxy configuration's to set.
    for (name, value) in carriers::query_pairs(uri.query()) {
        if name == "scope" {
            request.required_scopes.push(value.into_owned());
        } else if carriers::QUERY_CARRIERS.contains(&name.as_ref()) {
            request.credentials.push(value.into_owned());
        }
    }
    if let Some(body) = body.filter(|_| is_form_content_type(headers)) {
        request.credentials.extend(carriers::form_credentials(body));
    }
    request
}

fn render(answer: CheckAnswer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = axum::http::StatusCode::from_u16(answer.status)
        .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some(challenge) = answer
        .www_authenticate
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        headers.insert(header::WWW_AUTHENTICATE, challenge);
    }
    for (name, value) in &answer.identity {
        // A username may hold any UTF-8, which a header carries as opaque
        // bytes (RFC 9110 §5.5); a control character makes it empty rather
        // than dropped.
        let value =
            HeaderValue::from_bytes(value.as_bytes()).unwrap_or(HeaderValue::from_static(""));
        headers.insert(HeaderName::from_static(name), value);
    }
    response
}
