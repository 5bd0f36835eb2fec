//! Envoy's `envoy.service.auth.v3.Authorization/Check` (SPEC §9) against the
//! real binary, through a client generated from the same protos: each row of
//! the table in both of Envoy's header forms, the identity headers set to
//! overwrite, bounded parsing of odd input, reflection and the message cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use oauthd::grpc::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use oauthd::grpc::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use oauthd::grpc::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use oauthd::grpc::pb::envoy::service::auth::v3::check_response::HttpResponse;
use oauthd::grpc::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

/// `OVERWRITE_IF_EXISTS_OR_ADD` in `HeaderValueOption.append_action`.
const OVERWRITE_IF_EXISTS_OR_ADD: i32 = 2;

/// A request as Envoy describes it by default: headers in the `headers` map.
fn with_headers(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        host: "api.example".into(),
        headers: headers
            .iter()
            .map(|&(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        ..HttpRequest::default()
    }
}

/// The same with `encode_raw_headers`: each header apart in `header_map`, its
/// value in `raw_value`.
fn with_raw_headers(path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        host: "api.example".into(),
        header_map: Some(HeaderMap {
            headers: headers
                .iter()
                .map(|&(name, value)| HeaderValue {
                    key: name.to_owned(),
                    value: String::new(),
                    raw_value: value.as_bytes().to_vec(),
                })
                .collect(),
        }),
        ..HttpRequest::default()
    }
}

fn check_request(http: HttpRequest, scope: Option<&str>) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request { http: Some(http) }),
            context_extensions: scope
                .map(|scope| HashMap::from([("scope".to_owned(), scope.to_owned())]))
                .unwrap_or_default(),
        }),
    }
}

async fn check(channel: &Channel, http: HttpRequest, scope: Option<&str>) -> CheckResponse {
    AuthorizationClient::new(channel.clone())
        .check(check_request(http, scope))
        .await
        .unwrap()
        .into_inner()
}

/// The headers an allowed check sets on the upstream request, each checked to
/// overwrite whatever the client sent, even when empty.
fn allowed(response: &CheckResponse) -> HashMap<String, String> {
    assert_eq!(response.status.as_ref().unwrap().code, 0, "{response:?}");
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("no ok_response: {response:?}");
    };
    let mut headers = HashMap::new();
    for option in &ok.headers {
        assert_eq!(option.append, Some(false), "{option:?}");
        assert_eq!(
            option.append_action, OVERWRITE_IF_EXISTS_OR_ADD,
            "{option:?}"
        );
        assert!(option.keep_empty_value, "{option:?}");
        let header = option.header.as_ref().unwrap();
        headers.insert(header.key.clone(), header.value.clone());
    }
    let mut names: Vec<&str> = headers.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = IDENTITY_HEADERS;
    expected.sort_unstable();
    assert_eq!(names, expected);
    headers
}

/// A refusal: the gRPC code, the HTTP status, the headers for the client and
/// the JSON body. Every refusal is no-store JSON.
struct Denied {
    code: Code,
    http_status: i32,
    headers: HashMap<String, String>,
    body: Value,
}

impl Denied {
    fn www_authenticate(&self) -> Option<&str> {
        self.headers.get("www-authenticate").map(String::as_str)
    }
}

fn denied(response: &CheckResponse) -> Denied {
    let status = response.status.as_ref().unwrap();
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("no denied_response: {response:?}");
    };
    let headers: HashMap<String, String> = denied
        .headers
        .iter()
        .map(|option| {
            let header = option.header.as_ref().unwrap();
            (header.key.clone(), header.value.clone())
        })
        .collect();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    Denied {
        code: Code::from_i32(status.code),
        http_status: denied.status.as_ref().unwrap().code,
        headers,
        body: serde_json::from_str(&denied.body).unwrap(),
    }
}

/// An `invalid_token` refusal.
fn assert_invalid_token(response: &CheckResponse) {
    let denied = denied(response);
    assert_eq!(
        (denied.code, denied.http_status),
        (Code::Unauthenticated, 401)
    );
    let challenge = denied.www_authenticate().unwrap();
    assert!(
        challenge
            .starts_with(r#"Bearer realm="oauthd", error="invalid_token", error_description=""#),
        "{challenge}"
    );
    assert_eq!(denied.body["error"], "invalid_token");
    assert!(denied.body["error_description"].is_string());
}

async fn started() -> (TestDb, Server, TestClient, Channel) {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let channel = server.channel().await;
    (db, server, client, channel)
}

#[tokio::test]
async fn a_valid_token_is_allowed_in_both_header_forms_with_six_overwriting_identity_headers() {
    let (_db, server, client, channel) = started().await;
    let token = server.client_credentials_token(&client).await.access_token;
    let bearer = format!("Bearer {token}");
    // A client's forged identity is no credential; the answer overwrites it.
    let sent = [
        ("authorization", bearer.as_str()),
        ("x-auth-subject", "admin"),
    ];
    for http in [with_headers("/api", &sent), with_raw_headers("/api", &sent)] {
        let headers = allowed(&check(&channel, http, None).await);
        assert_eq!(headers["x-auth-subject"], client.id);
        assert_eq!(headers["x-auth-client-id"], client.id);
        assert_eq!(headers["x-auth-username"], "");
        assert_eq!(headers["x-auth-scope"], "read write");
        assert_eq!(headers["x-auth-credential"], "access_token");
        assert!(headers["x-auth-expires"].parse::<i64>().unwrap() > 0);
    }
    // header_map's `value` is read as well as `raw_value`.
    let mut http = with_raw_headers("/api", &[]);
    http.header_map.as_mut().unwrap().headers.push(HeaderValue {
        key: "authorization".into(),
        value: bearer.clone(),
        raw_value: Vec::new(),
    });
    allowed(&check(&channel, http, None).await);
}

#[tokio::test]
async fn a_token_in_the_query_of_the_path_or_of_the_original_uri_or_in_a_form_body_is_read() {
    let (_db, server, client, channel) = started().await;
    let token = server.client_credentials_token(&client).await.access_token;
    let in_path = format!("/api/items?page=2&access_token={token}");
    allowed(&check(&channel, with_headers(&in_path, &[]), None).await);
    // The same value in two places counts once.
    let bearer = format!("Bearer {token}");
    let twice = [("authorization", bearer.as_str())];
    allowed(&check(&channel, with_raw_headers(&in_path, &twice), None).await);
    let original = [("x-original-uri", in_path.as_str())];
    allowed(&check(&channel, with_headers("/api/items", &original), None).await);

    let form = format!("note=hi&access_token={token}");
    let mut http = with_headers(
        "/api",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    http.method = "POST".into();
    http.body = form.clone();
    allowed(&check(&channel, http.clone(), None).await);
    http.body = String::new();
    http.raw_body = form.into_bytes();
    allowed(&check(&channel, http.clone(), None).await);
    // Not a form: the body is no carrier.
    http.headers
        .insert("content-type".into(), "text/plain".into());
    let none = denied(&check(&channel, http, None).await);
    assert_eq!((none.code, none.http_status), (Code::Unauthenticated, 401));
}

#[tokio::test]
async fn no_credential_is_unauthenticated_with_a_bare_challenge_and_counted() {
    let (_db, server, _client, channel) = started().await;
    for http in [
        with_headers("/api?page=1", &[("authorization", "Basic dTpw")]),
        with_raw_headers("/api", &[]),
    ] {
        let denied = denied(&check(&channel, http, None).await);
        assert_eq!(
            (denied.code, denied.http_status),
            (Code::Unauthenticated, 401)
        );
        assert_eq!(denied.www_authenticate(), Some(r#"Bearer realm="oauthd""#));
        assert_eq!(denied.body, serde_json::json!({}));
    }
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics.lines().any(|line| {
        line.starts_with("oauthd_checks_total{")
            && line.contains(r#"transport="grpc""#)
            && line.contains(r#"outcome="no_credential""#)
            && line.contains(r#"credential="none""#)
            && line.ends_with(" 2")
    });
    assert!(counted, "{metrics}");
}

#[tokio::test]
async fn garbage_forged_and_unsigned_tokens_are_invalid_token() {
    let (_db, server, client, channel) = started().await;
    let token = server.client_credentials_token(&client).await.access_token;
    let parts: Vec<&str> = token.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "read write admin".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    for forged in ["garbage", "a.b.c", unsigned.as_str(), tampered.as_str()] {
        let bearer = format!("Bearer {forged}");
        let sent = [("authorization", bearer.as_str())];
        assert_invalid_token(&check(&channel, with_headers("/api", &sent), None).await);
        let api_key = [("x-api-key", forged)];
        assert_invalid_token(&check(&channel, with_raw_headers("/api", &api_key), None).await);
    }
}

#[tokio::test]
async fn a_refresh_token_is_never_a_credential_here() {
    let (db, server, client, channel) = started().await;
    create_user(&db.url, "rita", "Correct-Horse-Battery-Staple", &[]);
    let tokens = server
        .grpc()
        .await
        .issue_token(password_request(
            &client,
            "rita",
            "Correct-Horse-Battery-Staple",
        ))
        .await
        .unwrap()
        .into_inner();
    let bearer = format!("Bearer {}", tokens.refresh_token.unwrap());
    let sent = [("authorization", bearer.as_str())];
    assert_invalid_token(&check(&channel, with_headers("/api", &sent), None).await);
    // The access token of the same login passes, as the user.
    let bearer = format!("Bearer {}", tokens.access_token);
    let sent = [("authorization", bearer.as_str())];
    let headers = allowed(&check(&channel, with_headers("/api", &sent), None).await);
    assert_eq!(headers["x-auth-username"], "rita");
    assert_ne!(headers["x-auth-subject"], client.id);
}

#[tokio::test]
async fn the_route_scope_from_context_extensions_is_required() {
    let (_db, server, client, channel) = started().await;
    let token = server.client_credentials_token(&client).await.access_token;
    let bearer = format!("Bearer {token}");
    let sent = [("authorization", bearer.as_str())];
    allowed(&check(&channel, with_headers("/api", &sent), Some("read")).await);
    allowed(&check(&channel, with_headers("/api", &sent), Some("write read")).await);

    let denied = denied(&check(&channel, with_headers("/api", &sent), Some("read admin")).await);
    assert_eq!(
        (denied.code, denied.http_status),
        (Code::PermissionDenied, 403)
    );
    let challenge = denied.www_authenticate().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="oauthd", error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="admin read""#), "{challenge}");
    assert_eq!(denied.body["error"], "insufficient_scope");

    // A scope requirement that is not one is the route's mistake: 400.
    let malformed = denied_of(&check(&channel, with_headers("/api", &sent), Some("a\"b")).await);
    assert_eq!(
        malformed,
        (Code::InvalidArgument, 400, "invalid_request".to_owned())
    );
}

fn denied_of(response: &CheckResponse) -> (Code, i32, String) {
    let denied = denied(response);
    let error = denied.body["error"].as_str().unwrap_or_default().to_owned();
    (denied.code, denied.http_status, error)
}

#[tokio::test]
async fn two_different_credentials_are_invalid_argument() {
    let (_db, server, client, channel) = started().await;
    let first = server.client_credentials_token(&client).await.access_token;
    let second = server.client_credentials_token(&client).await.access_token;
    assert_ne!(first, second);
    let bearer = format!("Bearer {first}");
    let path = format!("/api?access_token={second}");
    for http in [
        with_headers(
            "/api",
            &[
                ("authorization", bearer.as_str()),
                ("access_token", second.as_str()),
            ],
        ),
        with_raw_headers(&path, &[("authorization", bearer.as_str())]),
        with_raw_headers(
            "/api",
            &[
                ("authorization", bearer.as_str()),
                ("authorization", "Bearer x"),
            ],
        ),
    ] {
        let denied = denied(&check(&channel, http, None).await);
        assert_eq!(
            (denied.code, denied.http_status),
            (Code::InvalidArgument, 400)
        );
        let challenge = denied.www_authenticate().unwrap();
        assert!(
            challenge.starts_with(
                r#"Bearer realm="oauthd", error="invalid_request", error_description=""#
            ),
            "{challenge}"
        );
        assert_eq!(denied.body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn huge_headers_many_parameters_and_bad_encoding_get_their_rows_and_the_server_serves_on() {
    let (_db, server, client, channel) = started().await;
    let token = server.client_credentials_token(&client).await.access_token;
    let bearer = format!("Bearer {token}");
    let huge = "a".repeat(100 * 1024);

    // A 100 KB credential is malformed; a 100 KB header of no interest changes nothing.
    let huge_bearer = format!("Bearer {huge}");
    assert_invalid_token(
        &check(
            &channel,
            with_headers("/api", &[("authorization", huge_bearer.as_str())]),
            None,
        )
        .await,
    );
    let sent = [
        ("authorization", bearer.as_str()),
        ("x-padding", huge.as_str()),
    ];
    allowed(&check(&channel, with_raw_headers("/api", &sent), None).await);

    // 10,000 parameters, then the credential: read. Without one: a bare 401.
    let filler = "p=1&".repeat(10_000);
    let many = format!("/api?{filler}access_token={token}");
    allowed(&check(&channel, with_headers(&many, &[]), None).await);
    let none = format!("/api?{}", &filler[..filler.len() - 1]);
    let bare = denied(&check(&channel, with_headers(&none, &[]), None).await);
    assert_eq!(bare.www_authenticate(), Some(r#"Bearer realm="oauthd""#));

    // Broken percent-encoding: a credential so encoded is malformed, anything
    // else is not the check's business.
    for path in [
        "/api?access_token=%zz",
        "/api?access_token=abc%4",
        "/api?api_key=%ff%fe",
    ] {
        assert_invalid_token(&check(&channel, with_headers(path, &[]), None).await);
    }
    let odd = format!("/api?q=100%&%zz=1&access_token={token}");
    allowed(&check(&channel, with_headers(&odd, &[]), None).await);
    // A Bearer with no token, and an empty carrier, are malformed credentials.
    assert_invalid_token(
        &check(
            &channel,
            with_headers("/api", &[("authorization", "Bearer")]),
            None,
        )
        .await,
    );
    assert_invalid_token(&check(&channel, with_headers("/api?access_token=", &[]), None).await);
    // Header bytes that are not UTF-8 make a malformed credential.
    let mut http = with_raw_headers("/api", &[]);
    http.header_map.as_mut().unwrap().headers.push(HeaderValue {
        key: "x-api-key".into(),
        value: String::new(),
        raw_value: vec![0xff, 0xfe, b'k'],
    });
    assert_invalid_token(&check(&channel, http, None).await);

    let sent = [("authorization", bearer.as_str())];
    allowed(&check(&server.channel().await, with_headers("/api", &sent), None).await);
}

#[tokio::test]
async fn a_check_over_192_kib_is_resource_exhausted_and_the_next_one_is_answered() {
    let (_db, server, client, channel) = started().await;
    let padding = "a".repeat(193 * 1024);
    let status = AuthorizationClient::new(channel.clone())
        .check(check_request(
            with_headers("/api", &[("x-padding", &padding)]),
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "The request message is larger than 192 KiB"
    );
    let token = server.client_credentials_token(&client).await.access_token;
    let bearer = format!("Bearer {token}");
    let sent = [("authorization", bearer.as_str())];
    allowed(&check(&server.channel().await, with_headers("/api", &sent), None).await);
}

/// What reflection says of a file: its `FileDescriptorProto`'s name and
/// imports (fields 1 and 3); the rest is skipped.
#[derive(Clone, PartialEq, prost::Message)]
struct FileImports {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, repeated, tag = "3")]
    dependency: Vec<String>,
}

#[tokio::test]
async fn reflection_lists_the_envoy_service_and_serves_its_files_and_their_imports() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let db = TestDb::new();
    let server = Server::start(&db);
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let mut ask = async |message: MessageRequest| -> ServerReflectionResponse {
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        };
        let mut stream = reflection
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        stream.message().await.unwrap().unwrap()
    };

    let response = ask(MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "envoy.service.auth.v3.Authorization",
        "oauthd.v1.TokenService",
    ] {
        assert!(names.contains(&service.to_owned()), "{names:?}");
    }

    // A generic client (grpcurl) fetches the service's file, then each import
    // by name: every one must be there.
    let mut request =
        MessageRequest::FileContainingSymbol("envoy.service.auth.v3.Authorization".into());
    let mut wanted: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let response = ask(request).await;
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("unexpected reflection answer: {response:?}");
        };
        for bytes in &files.file_descriptor_proto {
            let file = <FileImports as prost::Message>::decode(bytes.as_slice()).unwrap();
            wanted.extend(file.dependency.into_iter().filter(|d| !seen.contains(d)));
            seen.push(file.name);
        }
        wanted.retain(|name| !seen.contains(name));
        let Some(next) = wanted.pop() else { break };
        request = MessageRequest::FileByFilename(next);
    }
    for file in [
        "envoy/service/auth/v3/external_auth.proto",
        "envoy/config/core/v3/base.proto",
        "envoy/type/v3/http_status.proto",
        "google/rpc/status.proto",
        "google/protobuf/wrappers.proto",
    ] {
        assert!(seen.contains(&file.to_owned()), "{seen:?}");
    }
}
