//! The `TokenService` requests (src/grpc/pb.rs) as tonic decodes them: any
//! bytes through prost's `Message::decode` for each of the four request
//! messages, and through the generated `TokenServiceServer` (gRPC framing,
//! tonic's codec, the unary path) in front of a stub service that keeps what it
//! was handed.
//!
//! Input: the first byte picks the method (`% 4`) and whether the rest is a
//! message this target frames (bit 2 clear) or the whole request body. Checked:
//! a decoded message encodes and decodes back to itself, and the server hands
//! the service exactly what prost decodes from a framed message, or nothing.

#![no_main]

use std::fmt::Debug;
use std::sync::{LazyLock, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use libfuzzer_sys::fuzz_target;
use oauthd::grpc::pb::token_service_server::{TokenService, TokenServiceServer};
use oauthd::grpc::pb::{
    IntrospectRequest, IntrospectResponse, IssueTokenRequest, RefreshTokenRequest, RevokeRequest,
    RevokeResponse, TokenResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};
use tower::ServiceExt as _;

#[derive(Debug, PartialEq)]
enum Decoded {
    Issue(IssueTokenRequest),
    Refresh(RefreshTokenRequest),
    Introspect(IntrospectRequest),
    Revoke(RevokeRequest),
}

/// What the stub service was last handed.
static HANDED: Mutex<Option<Decoded>> = Mutex::new(None);

fn keep(decoded: Decoded) {
    *HANDED.lock().expect("lock") = Some(decoded);
}

struct Stub;

#[tonic::async_trait]
impl TokenService for Stub {
    async fn issue_token(
        &self,
        request: Request<IssueTokenRequest>,
    ) -> Result<Response<TokenResponse>, Status> {
        keep(Decoded::Issue(request.into_inner()));
        Ok(Response::new(TokenResponse::default()))
    }

    async fn refresh_token(
        &self,
        request: Request<RefreshTokenRequest>,
    ) -> Result<Response<TokenResponse>, Status> {
        keep(Decoded::Refresh(request.into_inner()));
        Ok(Response::new(TokenResponse::default()))
    }

    async fn introspect(
        &self,
        request: Request<IntrospectRequest>,
    ) -> Result<Response<IntrospectResponse>, Status> {
        keep(Decoded::Introspect(request.into_inner()));
        Ok(Response::new(IntrospectResponse::default()))
    }

    async fn revoke(
        &self,
        request: Request<RevokeRequest>,
    ) -> Result<Response<RevokeResponse>, Status> {
        keep(Decoded::Revoke(request.into_inner()));
        Ok(Response::new(RevokeResponse::default()))
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

static SERVER: LazyLock<TokenServiceServer<Stub>> = LazyLock::new(|| TokenServiceServer::new(Stub));

/// Decodes `bytes` as `M`; a message that decodes must survive a round trip.
fn decode<M: Message + Default + PartialEq + Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len());
    assert_eq!(M::decode(encoded.as_slice()).as_ref(), Ok(&message));
    Some(message)
}

/// One gRPC message frame (uncompressed).
fn frame(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).expect("fuzz inputs are short");
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let issue = decode::<IssueTokenRequest>(rest).map(Decoded::Issue);
    let refresh = decode::<RefreshTokenRequest>(rest).map(Decoded::Refresh);
    let introspect = decode::<IntrospectRequest>(rest).map(Decoded::Introspect);
    let revoke = decode::<RevokeRequest>(rest).map(Decoded::Revoke);
    let (method, expected) = match pick % 4 {
        0 => ("IssueToken", issue),
        1 => ("RefreshToken", refresh),
        2 => ("Introspect", introspect),
        _ => ("Revoke", revoke),
    };
    let framed = pick & 4 == 0;
    let body = if framed { frame(rest) } else { rest.to_vec() };
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://localhost/oauthd.v1.TokenService/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    HANDED.lock().expect("lock").take();
    RUNTIME.block_on(async {
        let response = SERVER.clone().oneshot(request).await.expect("infallible");
        let _ = response.into_body().collect().await;
    });
    let handed = HANDED.lock().expect("lock").take();
    if framed {
        assert_eq!(handed, expected, "tonic and prost disagree");
    }
});
