//! gRPC request messages that are too large or do not decode: refused from the
//! length prefix with `RESOURCE_EXHAUSTED`, or `INVALID_ARGUMENT` without the
//! decoder's text, with memory bounded, and the server serving on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oauthd::grpc::pb;
use prost::bytes::{Buf as _, BufMut as _};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Sends and receives message bodies as they are, to put bytes on the wire that
/// no generated client would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = buf.copy_to_bytes(buf.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

async fn raw_call(channel: Channel, method: &'static str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(drop)
}

fn assert_undecodable(status: &Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "The request message could not be decoded");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("invalid_request", "oauthd")
    );
}

fn assert_too_large(status: &Status) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
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

/// A field of length-delimited wire type: tag, length, bytes.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![number << 3 | 2];
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_five_megabyte_message_is_refused_from_its_length_prefix() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let huge = "t".repeat(5_000_000);
    let mut grpc = server.grpc().await;

    let status = grpc
        .introspect(introspect_request(&client, &huge))
        .await
        .unwrap_err();
    assert_too_large(&status);
    let status = grpc
        .issue_token(pb::IssueTokenRequest {
            client: client.credentials(),
            grant_type: "client_credentials".into(),
            scope: Some(huge),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_too_large(&status);

    // The same connection keeps serving.
    let token = grpc
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap()
        .into_inner();
    assert!(server.is_active(&client, &token.access_token).await);
}

#[tokio::test]
async fn a_message_just_under_the_limit_is_read_and_one_just_over_is_not() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let mut grpc = server.grpc().await;
    let mut request = introspect_request(&client, "");
    // The token field adds its tag and a three-byte length to its bytes.
    let overhead = prost::Message::encoded_len(&request) + 1 + 3;
    request.token = "t".repeat(64 * 1024 - overhead);
    assert_eq!(prost::Message::encoded_len(&request), 64 * 1024);
    let answer = grpc.introspect(request.clone()).await.unwrap().into_inner();
    assert!(!answer.active);
    request.token.push('t');
    assert_too_large(&grpc.introspect(request).await.unwrap_err());
}

#[tokio::test]
async fn sixty_concurrent_four_megabyte_calls_leave_memory_bounded() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    // Warm up: connections, buffers and the allocator's arenas in use.
    for _ in 0..3 {
        let _ = server
            .grpc()
            .await
            .introspect(introspect_request(&client, &"w".repeat(60_000)))
            .await
            .unwrap();
    }
    let rss_before = proc_status_kib(server.pid(), "VmRSS:");
    let peak_before = proc_status_kib(server.pid(), "VmHWM:");

    let huge = "t".repeat(4_000_000);
    let mut calls = Vec::new();
    for _ in 0..60 {
        // One connection each: every connection has its own HTTP/2 windows.
        let mut grpc = server.grpc().await;
        let request = introspect_request(&client, &huge);
        calls.push(tokio::spawn(async move { grpc.introspect(request).await }));
    }
    for call in calls {
        assert_too_large(&call.await.unwrap().unwrap_err());
    }

    let rss_after = proc_status_kib(server.pid(), "VmRSS:");
    let peak_after = proc_status_kib(server.pid(), "VmHWM:");
    eprintln!("RSS {rss_before} -> {rss_after} KiB, peak {peak_before} -> {peak_after} KiB");
    // Before the limit, 60 such calls took the server from ~10 MB to 172 MB.
    assert!(
        peak_after < peak_before + 8 * 1024,
        "peak RSS grew from {peak_before} to {peak_after} KiB"
    );
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        server
            .is_active(
                &client,
                &server.client_credentials_token(&client).await.access_token
            )
            .await
    );
}

#[tokio::test]
async fn garbage_and_invalid_utf8_are_invalid_argument_without_decoder_text() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let channel = server.channel().await;

    let not_utf8 = field(2, &[0xc3, 0x28, 0xff]);
    let garbage = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    let truncated_field = vec![0x12, 0x7f, b'a', b'b'];
    let unknown_wire_type = vec![0x0f, 0x00];
    let mut bad_client = field(1, &field(1, &[0xfe, 0xfe]));
    bad_client.extend(field(2, b"token"));
    for (method, body) in [
        ("/oauthd.v1.TokenService/Introspect", not_utf8.clone()),
        ("/oauthd.v1.TokenService/Introspect", garbage.clone()),
        ("/oauthd.v1.TokenService/IssueToken", truncated_field),
        ("/oauthd.v1.TokenService/Revoke", unknown_wire_type),
        ("/oauthd.v1.TokenService/RefreshToken", bad_client),
        ("/oauthd.v1.TokenService/IssueToken", field(2, &[0x80])),
    ] {
        let status = raw_call(channel.clone(), method, body.clone())
            .await
            .unwrap_err();
        assert_undecodable(&status);
        let lowered = status.message().to_lowercase();
        for internal in ["protobuf", "utf-8", "wire type", "buffer", "varint"] {
            assert!(!lowered.contains(internal), "{method} {body:?}: {status:?}");
        }
    }

    // A well-formed message through the same raw path still works.
    let good = prost::Message::encode_to_vec(&client_credentials_request(&client));
    raw_call(channel.clone(), "/oauthd.v1.TokenService/IssueToken", good)
        .await
        .unwrap();
    assert!(
        server
            .is_active(
                &client,
                &server.client_credentials_token(&client).await.access_token
            )
            .await
    );
}

#[tokio::test]
async fn health_and_reflection_refuse_oversized_requests_and_keep_answering() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let db = TestDb::new();
    let server = Server::start(&db);
    let mut health = HealthClient::new(server.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "s".repeat(4096),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let serving = health
        .check(HealthCheckRequest {
            service: "oauthd.v1.TokenService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, 1, "SERVING");

    // Reflection streams its requests: an oversized one ends the stream
    // unanswered; a small one is answered.
    const REFLECTION: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    let mut oversized = field(1, b"localhost");
    oversized.extend(field(3, "x".repeat(64 * 1024).as_bytes()));
    assert!(
        raw_call(server.channel().await, REFLECTION, oversized)
            .await
            .is_err()
    );
    let list_services = field(7, b"");
    raw_call(server.channel().await, REFLECTION, list_services)
        .await
        .unwrap();
}
