//! How large a gRPC request message may be, per service, and what a caller whose
//! message is larger is told.
//!
//! tonic reads a message's five-byte prefix (compression flag and length) before
//! its body, and refuses a length over the service's `max_decoding_message_size`
//! right there, before it reserves room for the message (`decode_chunk` in
//! tonic's `codec/decode.rs`). At most the HTTP/2 frames already received are
//! held, so a 5 MB message costs the server no more than a small one. Its
//! default limit, 4 MiB, would let anyone make the server buffer 4 MiB per call
//! before authentication.
//!
//! tonic's answer is `OUT_OF_RANGE` with its own text. [`RefuseOversized`] turns
//! it into the `RESOURCE_EXHAUSTED` that gRPC's own implementations send for a
//! message over the limit, with a description and oauthd's `ErrorInfo`
//! (`invalid_request`), as for any malformed request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::Service;

use super::ext_authz::ExtAuthzImpl;
use super::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use super::pb::token_service_server::TokenServiceServer;
use super::status::ERROR_DOMAIN;
use super::token_service::TokenServiceImpl;
use crate::oauth::error::OAuthError;
use crate::oauth::storage::Stores;

/// The default limit of a `TokenService` request message: the HTTP shim's body
/// limit (SPEC §4), since a request carries what the form carries.
pub(crate) const DEFAULT_TOKEN_SERVICE_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The least `--grpc-max-message-bytes` accepts; below it ordinary requests
/// with long tokens would not fit.
pub(crate) const MIN_TOKEN_SERVICE_MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// The limit of a `grpc.health.v1` request, which holds one service name.
pub(crate) const HEALTH_MAX_MESSAGE_BYTES: usize = 1024;

/// The limit of a server reflection request, which names a file, a symbol or
/// an extension.
pub(crate) const REFLECTION_MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Envoy's default `max_request_headers_kb`: the most header bytes it forwards.
const ENVOY_MAX_HEADER_BYTES: usize = 60 * 1024;

/// The limit of an Envoy `ext_authz` `CheckRequest`, sized for what Envoy
/// sends rather than for a token request. The request carries every header (up
/// to Envoy's 60 KiB default), and the path and host once more outside the
/// header map, so twice that; plus the body when the filter sets
/// `with_request_body`, whose `max_request_bytes` should then be at most the
/// shim's 64 KiB; plus 8 KiB for the peer addresses, metadata and protobuf
/// framing. 192 KiB in all.
pub(crate) const EXT_AUTHZ_MAX_MESSAGE_BYTES: usize =
    2 * ENVOY_MAX_HEADER_BYTES + DEFAULT_TOKEN_SERVICE_MAX_MESSAGE_BYTES + 8 * 1024;

/// `TokenService`, its requests limited to `limit` bytes
/// (`--grpc-max-message-bytes`).
pub(crate) fn token_service<S: Stores>(
    service: TokenServiceImpl<S>,
    limit: usize,
) -> RefuseOversized<TokenServiceServer<TokenServiceImpl<S>>> {
    RefuseOversized {
        inner: TokenServiceServer::new(service).max_decoding_message_size(limit),
        limit,
    }
}

/// Envoy's `Check`, its requests limited to [`EXT_AUTHZ_MAX_MESSAGE_BYTES`].
pub(crate) fn ext_authz<S: Stores>(
    service: ExtAuthzImpl<S>,
) -> RefuseOversized<AuthorizationServer<ExtAuthzImpl<S>>> {
    RefuseOversized {
        inner: AuthorizationServer::new(service)
            .max_decoding_message_size(EXT_AUTHZ_MAX_MESSAGE_BYTES),
        limit: EXT_AUTHZ_MAX_MESSAGE_BYTES,
    }
}

/// Health checking, its requests limited to [`HEALTH_MAX_MESSAGE_BYTES`].
pub(crate) fn health<H: Health>(server: HealthServer<H>) -> RefuseOversized<HealthServer<H>> {
    RefuseOversized {
        inner: server.max_decoding_message_size(HEALTH_MAX_MESSAGE_BYTES),
        limit: HEALTH_MAX_MESSAGE_BYTES,
    }
}

/// A generated server, limited to `limit` bytes, whose oversized requests are
/// answered `RESOURCE_EXHAUSTED`. Reflection streams its requests, so its
/// refusals travel in trailers this cannot rewrite; it keeps tonic's answer.
#[derive(Debug, Clone)]
pub(crate) struct RefuseOversized<S> {
    inner: S,
    limit: usize,
}

impl<S: NamedService> NamedService for RefuseOversized<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for RefuseOversized<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    // Generated servers answer with a boxed future, which is Unpin.
    S::Future: Unpin,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = RefusingOversized<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        RefusingOversized {
            inner: self.inner.call(request),
            limit: self.limit,
        }
    }
}

/// The response future of [`RefuseOversized`]: no allocation of its own.
pub(crate) struct RefusingOversized<F> {
    inner: F,
    limit: usize,
}

impl<F, E> Future for RefusingOversized<F>
where
    F: Future<Output = Result<http::Response<Body>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let limit = self.limit;
        Pin::new(&mut self.inner)
            .poll(cx)
            .map_ok(|response| refuse_if_oversized(response, limit))
    }
}

/// A refusal tonic built from a status carries that status in its extensions
/// (`Status::into_http`); a successful response carries none. oauthd's handlers
/// never answer `OUT_OF_RANGE`, so that code is tonic's refusal of the length.
fn refuse_if_oversized(response: http::Response<Body>, limit: usize) -> http::Response<Body> {
    match response.extensions().get::<Status>() {
        Some(status) if status.code() == Code::OutOfRange => oversized(limit).into_http(),
        _ => response,
    }
}

/// The status of a request message over `limit` bytes.
pub(crate) fn oversized(limit: usize) -> Status {
    let err = OAuthError::message_too_large(limit);
    Status::with_error_details(
        Code::ResourceExhausted,
        err.description(),
        ErrorDetails::with_error_info(err.code(), ERROR_DOMAIN, HashMap::new()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonics_length_refusal_becomes_resource_exhausted_with_error_info() {
        let tonic_refusal = Status::out_of_range("Error, decoded message length too large");
        let response = refuse_if_oversized(tonic_refusal.into_http(), 64 * 1024);
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "The request message is larger than 64 KiB"
        );
        let info = status.get_details_error_info().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("invalid_request", "oauthd")
        );
    }

    #[test]
    fn other_answers_pass_unchanged() {
        let denied = Status::unauthenticated("Bad client credentials").into_http();
        let response = refuse_if_oversized(denied, 1024);
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::Unauthenticated);
        let ok = http::Response::new(Body::default());
        assert!(refuse_if_oversized(ok, 1024).headers().is_empty());
    }

    #[test]
    fn the_envoy_limit_holds_its_headers_twice_and_a_shim_sized_body() {
        assert_eq!(EXT_AUTHZ_MAX_MESSAGE_BYTES, 192 * 1024);
    }
}
