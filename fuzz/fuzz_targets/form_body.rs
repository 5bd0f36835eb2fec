//! The token, introspection and revocation endpoints' form parser
//! (`FormRequest::parse`, src/http/form.rs) on any body, checked against a
//! strict reading of the rules: it accepts exactly the bodies that decode with
//! no parameter repeated, and then returns each value as sent.

#![no_main]

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use oauthd::http::FormRequest;
use oauthd_fuzz::{FormVerdict, strict_form};

fuzz_target!(|body: &[u8]| {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let parsed = FormRequest::parse(&headers, &Bytes::copy_from_slice(body));
    match (strict_form(body), parsed) {
        (FormVerdict::Accepted(params), Ok(form)) => {
            for (name, value) in &params {
                let expected = Some(value.as_str()).filter(|v| !v.is_empty());
                assert_eq!(form.get(name), expected, "parameter {name:?}");
            }
            // No Basic header: the credentials are the body's, as sent.
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
        (FormVerdict::Undecodable | FormVerdict::Repeated, Err(rejection)) => {
            assert_eq!(rejection.error.code(), "invalid_request");
            assert!(!rejection.tried_basic);
        }
        (verdict, parsed) => panic!("the rules say {verdict:?}, the parser {parsed:?}"),
    }
});
