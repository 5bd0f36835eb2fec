//! Micro-benchmark of reading a token request: content type, form decoding with
//! the repeated-parameter and encoding checks, and HTTP Basic credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use criterion::{Criterion, criterion_group, criterion_main};
use oauthd::http::FormRequest;

fn token_request_parsing(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic aFZxMG5ZcEptM3hSMmI5WmtMd1RmQTpjM2Q3X1N6Tmw0b0ZrN2dVMlpmSmhYcVRrWXdBMEJkTTVQdjlyTGUxRXNp"),
    );
    let body = Bytes::from_static(b"grant_type=password&username=alice%40example.com&password=s3cret-passw0rd&scope=read+write");
    c.bench_function("form/token_request", |b| {
        b.iter(|| {
            let form = FormRequest::parse(black_box(&headers), black_box(&body)).unwrap();
            form.client_credentials().unwrap()
        })
    });
}

criterion_group!(benches, token_request_parsing);
criterion_main!(benches);
