//! Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1, read by
//! `FormRequest::parse` and `client_credentials`, src/http/form.rs) for any
//! header value, checked against a reading of RFC 7617 written from the RFC.
//!
//! Input: the first byte picks the body (no credentials, the same `client_id`,
//! another `client_id`, a `client_secret`); the rest is the header value.

#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use oauthd::http::FormRequest;
use oauthd_fuzz::{BasicVerdict, basic_verdict, strict_form_decode};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    // hyper never delivers a value with control characters; nothing to read.
    let Ok(header_value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let verdict = basic_verdict(value);
    let body = match pick % 4 {
        0 => "grant_type=client_credentials".to_owned(),
        1 => match &verdict {
            // The id as the header carries it, form-encoded the same way.
            BasicVerdict::Credentials(id, _) => format!(
                "grant_type=client_credentials&client_id={}",
                form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
            ),
            _ => "grant_type=client_credentials&client_id=".to_owned(),
        },
        2 => "grant_type=client_credentials&client_id=some-other-client".to_owned(),
        _ => "grant_type=client_credentials&client_secret=s".to_owned(),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::AUTHORIZATION, header_value);
    let parsed = FormRequest::parse(&headers, &Bytes::from(body.clone()));
    match (verdict, parsed) {
        (BasicVerdict::NotBasic, Ok(form)) => {
            let credentials = form.client_credentials().expect("body credentials");
            assert_eq!(
                credentials.client_id,
                form.get("client_id").unwrap_or_default()
            );
            assert_eq!(
                credentials.client_secret.as_deref(),
                form.get("client_secret")
            );
        }
        (BasicVerdict::Unreadable, Err(rejection)) => {
            assert_eq!(rejection.error.code(), "invalid_client");
            assert!(rejection.tried_basic);
        }
        (BasicVerdict::Credentials(id, secret), Ok(form)) => {
            let body_id = body
                .split('&')
                .find_map(|pair| pair.strip_prefix("client_id="))
                .and_then(|raw| strict_form_decode(raw.as_bytes()))
                .filter(|v| !v.is_empty());
            let body_secret = body.contains("client_secret=");
            match form.client_credentials() {
                Ok(credentials) => {
                    assert!(!body_secret && body_id.as_ref().is_none_or(|b| *b == id));
                    assert_eq!(credentials.client_id, id);
                    assert_eq!(credentials.client_secret, Some(secret));
                }
                Err(error) => {
                    assert!(body_secret || body_id.is_some_and(|b| b != id));
                    assert_eq!(error.code(), "invalid_request");
                }
            }
        }
        (verdict, parsed) => panic!("RFC 7617 says {verdict:?}, the parser {parsed:?}"),
    }
});
