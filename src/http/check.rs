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
use crate::oauth::check::{CheckAnswer, CheckOutcome, CheckRequest, Denial, check};

/// Headers in which proxies pass the original request's URI: Traefik and
/// Caddy send `X-Forwarded-Uri`, nginx configurations `X-Original-URI`, and
/// some proxies `X-Original-URL` with scheme and host.
const ORIGINAL_URI_HEADERS: [&str; 3] = ["x-forwarded-uri", "x-original-uri", "x-original-url"];

/// Query parameters that carry a credential.
const QUERY_CARRIERS: [&str; 2] = ["access_token", "api_key"];

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
    render(&CheckAnswer::of(&checked.outcome))
}

/// Every credential and scope requirement of the request (SPEC §9's list).
pub(crate) fn gather(uri: &Uri, headers: &HeaderMap, body: Option<&[u8]>) -> CheckRequest {
    let mut request = CheckRequest::default();
    for value in headers.get_all(header::AUTHORIZATION) {
        let value = String::from_utf8_lossy(value.as_bytes());
        // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1).
        // Other schemes (Basic, say) are for the upstream, not for us.
        if let Some((scheme, token)) = value.split_once(' ').or(Some((&value, "")))
            && scheme.eq_ignore_ascii_case("bearer")
        {
            request.credentials.push(token.trim().to_owned());
        }
    }
    for name in ["access_token", "x-api-key"] {
        for value in headers.get_all(name) {
            let value = String::from_utf8_lossy(value.as_bytes());
            request.credentials.push(value.trim().to_owned());
        }
    }
    // The check URL's own query: credentials, and the scopes to require.
    for (name, value) in query_pairs(uri.query()) {
        if name == "scope" {
            request.required_scopes.push(value.into_owned());
        } else if QUERY_CARRIERS.contains(&name.as_ref()) {
            request.credentials.push(value.into_owned());
        }
    }
    // The original request's query: credentials only, never requirements,
    // which are the proxy configuration's to set.
    for name in ORIGINAL_URI_HEADERS {
        for value in headers.get_all(name) {
            let original = String::from_utf8_lossy(value.as_bytes());
            request.credentials.extend(query_credentials(&original));
        }
    }
    if let Some(body) = body.filter(|_| is_form_content_type(headers)) {
        request.credentials.extend(
            form_urlencoded::parse(body)
                .filter(|(name, _)| name == "access_token")
                .map(|(_, value)| value.into_owned()),
        );
    }
    request
}

/// The credentials in the query of a URI, a path with a query, or a full URL.
pub(crate) fn query_credentials(uri: &str) -> Vec<String> {
    let without_fragment = uri.split('#').next().unwrap_or_default();
    let query = without_fragment.split_once('?').map(|(_, query)| query);
    query_pairs(query)
        .filter(|(name, _)| QUERY_CARRIERS.contains(&name.as_ref()))
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The pairs of a query. Decoding is lenient: a `%` without two hex digits
/// stays as it is, so a credential with one is refused as malformed rather
/// than dropped, and the rest of the query still counts.
fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
}

fn render(answer: &CheckAnswer) -> Response {
    let mut response = Response::new(Body::from(answer.body.clone()));
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
