//! Reading an RFC 6749 form request: `application/x-www-form-urlencoded` only,
//! each parameter at most once (§3.2), empty values treated as absent (§3.1), and
//! client credentials from HTTP Basic (§2.3.1) or the body, never both.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::HttpError;
use crate::grpc::pb;
use crate::oauth::check::carriers::is_form_media_type;
use crate::oauth::error::OAuthError;

/// Reads a form request from the extracted body, answering 413 for a body over
/// the limit (axum stops reading there) and 400 for anything unreadable.
// The error is a finished response, built once on the error path; boxing it
// would only add an allocation.
#[allow(clippy::result_large_err)]
fn read_form(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<FormRequest, Response> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return body_too_large();
        }
        HttpError {
            error: OAuthError::unreadable_body(),
            tried_basic: false,
        }
        .into_response()
    })?;
    FormRequest::parse(headers, &body).map_err(|rejection| {
        HttpError {
            error: rejection.error,
            tried_basic: rejection.tried_basic,
        }
        .into_response()
    })
}

/// The 413 for a body over `MAX_BODY_BYTES`, found while reading it or
/// declared in its `Content-Length`.
pub(crate) fn body_too_large() -> Response {
    let mut response = HttpError {
        error: OAuthError::body_too_large(),
        tried_basic: false,
    }
    .into_response();
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}

/// A parsed form request.
///
/// # As extractor
/// `FormRequest` reads the body (within the router's 64 KiB limit) and parses
/// it; its rejection is the finished RFC 6749 §5.2 error response: 413 for a
/// body over the limit, 400 (or 401 for unreadable Basic credentials)
/// otherwise.
#[derive(Debug, Default)]
pub struct FormRequest {
    params: HashMap<String, String>,
    /// Whether the client tried HTTP Basic; a 401 then carries `WWW-Authenticate`.
    pub(crate) tried_basic: bool,
    basic: Option<(String, String)>,
}

impl<S: Send + Sync> FromRequest<S> for FormRequest {
    type Rejection = Response;

    async fn from_request(mut request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Taken, not cloned: the body extractor needs only the body and the
        // limit the router put in the extensions.
        let headers = std::mem::take(request.headers_mut());
        let body = Bytes::from_request(request, state).await;
        read_form(&headers, body)
    }
}

/// A form request that could not be read, with whether Basic was tried.
#[derive(Debug)]
pub struct FormRejection {
    /// The error to answer.
    pub error: OAuthError,
    /// Whether the client tried HTTP Basic.
    pub tried_basic: bool,
}

impl FormRequest {
    /// Parses headers and body.
    pub fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, FormRejection> {
        let tried_basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(scheme_is_basic);
        let reject = |error| FormRejection { error, tried_basic };
        if !is_form_content_type(headers) {
            return Err(reject(OAuthError::not_a_form()));
        }
        let params = parse_body(body).map_err(reject)?;
        let basic = if tried_basic {
            Some(basic_credentials(headers).ok_or_else(|| reject(OAuthError::InvalidClient))?)
        } else {
            None
        };
        Ok(Self {
            params,
            tried_basic,
            basic,
        })
    }

    /// A parameter's value; absent if missing or empty (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A parameter's value, owned.
    pub(crate) fn take(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// The client's credentials. Basic and body credentials together are refused;
    /// a body `client_id` equal to the Basic one is tolerated, since some client
    /// libraries send it alongside the header.
    pub fn client_credentials(&self) -> Result<pb::ClientCredentials, OAuthError> {
        let body_id = self.get("client_id");
        let body_secret = self.get("client_secret");
        match &self.basic {
            Some((id, secret)) => {
                if body_secret.is_some() || body_id.is_some_and(|body| body != id) {
                    return Err(OAuthError::multiple_client_authentications());
                }
                Ok(pb::ClientCredentials {
                    client_id: id.clone(),
                    client_secret: Some(secret.clone()),
                })
            }
            None => Ok(pb::ClientCredentials {
                client_id: body_id.unwrap_or_default().to_owned(),
                client_secret: body_secret.map(str::to_owned),
            }),
        }
    }
}

fn scheme_is_basic(value: &str) -> bool {
    value
        .split_once(' ')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

/// Whether the body says it is `application/x-www-form-urlencoded`.
pub(crate) fn is_form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_form_media_type)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (_, encoded) = value.split_once(' ')?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id).ok()?, form_decode(secret).ok()?))
}

fn parse_body(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut params = HashMap::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(name)?;
        let value = decode_component(value)?;
        if params.insert(name.clone(), value).is_some() {
            return Err(OAuthError::repeated_parameter(&name));
        }
    }
    Ok(params)
}

fn form_decode(text: &str) -> Result<String, OAuthError> {
    decode_component(text.as_bytes())
}

/// Decodes one `application/x-www-form-urlencoded` name or value, refusing what
/// lenient decoders would silently repair: a `%` not followed by two hex digits,
/// and bytes that are not UTF-8.
pub(crate) fn decode_component(raw: &[u8]) -> Result<String, OAuthError> {
    let malformed = raw.iter().enumerate().any(|(at, &b)| {
        b == b'%'
            && !(raw.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && raw.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(OAuthError::malformed_percent_encoding());
    }
    // Most names and values (grant types, client ids, secrets, tokens) have
    // nothing to decode; they skip the two copies below.
    let decoded = if raw.iter().any(|&b| b == b'%' || b == b'+') {
        let plus_as_space: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let mut decoded = Vec::with_capacity(raw.len());
        decoded.extend(percent_encoding::percent_decode(&plus_as_space));
        decoded
    } else {
        raw.to_vec()
    };
    String::from_utf8(decoded).map_err(|_| OAuthError::not_utf8())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    fn parse(body: &'static str) -> Result<FormRequest, FormRejection> {
        FormRequest::parse(&form_headers(), &Bytes::from_static(body.as_bytes()))
    }

    #[test]
    fn values_are_form_decoded_and_empty_ones_are_absent() {
        let form =
            parse("grant_type=client_credentials&scope=read+write%21&client_secret=").unwrap();
        assert_eq!(form.get("scope"), Some("read write!"));
        assert_eq!(form.get("client_secret"), None);
    }

    #[test]
    fn repeated_parameters_are_refused_by_name() {
        let err = parse("scope=a&scope=b").unwrap_err().error;
        assert_eq!(err.code(), "invalid_request");
        assert!(err.description().contains("scope"));
    }

    #[test]
    fn broken_percent_encoding_and_bad_utf8_are_refused() {
        assert_eq!(
            parse("scope=%zz").unwrap_err().error.code(),
            "invalid_request"
        );
        assert_eq!(
            parse("scope=%ff%fe").unwrap_err().error.code(),
            "invalid_request"
        );
        assert_eq!(
            parse("scope=%4").unwrap_err().error.code(),
            "invalid_request"
        );
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut headers = form_headers();
        let encoded = STANDARD.encode("my%20id:s%3Acret+x");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        let form = FormRequest::parse(&headers, &Bytes::from_static(b"grant_type=x")).unwrap();
        let creds = form.client_credentials().unwrap();
        assert_eq!(creds.client_id, "my id");
        assert_eq!(creds.client_secret.as_deref(), Some("s:cret x"));
    }
}
