//! Error descriptions that name a request value quote a short, sanitised prefix
//! of it, over HTTP and gRPC: a huge value cannot blow up the answer (a gRPC
//! status message travels in a header), and what comes back stays within
//! RFC 6749's `error_description` alphabet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oauthd::grpc::pb;
use serde_json::Value;
use tonic::Code;

/// RFC 6749 §5.2: `error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
fn in_rfc_alphabet(description: &str) -> bool {
    description
        .bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

async fn post_form(server: &Server, client: &TestClient, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap()
}

#[tokio::test]
async fn http_descriptions_quote_a_short_sanitised_prefix() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);

    // Just under the body limit, so it reaches the grant check.
    let long = "g".repeat(60_000);
    let (status, body) = post_form(&server, &client, format!("grant_type={long}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    assert_eq!(
        description(&body),
        format!("Unsupported grant type: {}...", "g".repeat(64))
    );

    // A megabyte never gets that far: the body limit answers, briefly.
    let huge = "g".repeat(1 << 20);
    let (status, body) = post_form(&server, &client, format!("grant_type={huge}")).await;
    assert_eq!(status, 413);
    assert_eq!(description(&body), "The request body is larger than 64 KiB");

    // Quotes, backslashes and control characters do not come back.
    let (status, body) = post_form(
        &server,
        &client,
        "grant_type=x%22y%5Cz%01%0D%0Aw%C3%A9".to_owned(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(description(&body), "Unsupported grant type: x?y?z???w?");

    let (status, body) = post_form(
        &server,
        &client,
        "grant_type=client_credentials&scope=read+%22evil%5C%07".to_owned(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert_eq!(description(&body), "Malformed scope: ?evil??");

    let name = "n".repeat(30_000);
    let (status, body) = post_form(
        &server,
        &client,
        format!("grant_type=client_credentials&{name}=1&{name}=2"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        description(&body),
        format!("Parameter given more than once: {}...", "n".repeat(64))
    );

    let scope = "s".repeat(50_000);
    let (_, body) = post_form(
        &server,
        &client,
        format!("grant_type=client_credentials&scope={scope}"),
    )
    .await;
    assert_eq!(
        description(&body),
        format!("Scope not allowed for this client: {}...", "s".repeat(64))
    );

    // Ordinary values are quoted word for word, extension grant URIs included.
    let (_, body) = post_form(&server, &client, "grant_type=implicit".to_owned()).await;
    assert_eq!(description(&body), "Unsupported grant type: implicit");
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    let (_, body) = post_form(&server, &client, format!("grant_type={exchange}")).await;
    assert_eq!(
        description(&body),
        format!("Unsupported grant type: {exchange}")
    );
}

async fn issue_err(server: &Server, request: pb::IssueTokenRequest) -> (Code, String, String) {
    let status = server.grpc().await.issue_token(request).await.unwrap_err();
    oauth_error(&status)
}

fn grant_request(client: &TestClient, grant_type: String) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        client: client.credentials(),
        grant_type,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_megabyte_grant_type_over_grpc_gets_a_short_description() {
    let db = TestDb::new();
    // A limit above the value, so the request reaches the grant check: the
    // status message must not then carry the value into a header.
    let server = Server::start_with(&db, &["--grpc-max-message-bytes", "2097152"]);
    let client = create_full_client(&db.url);

    let (code, reason, text) =
        issue_err(&server, grant_request(&client, "g".repeat(1 << 20))).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "unsupported_grant_type")
    );
    assert_eq!(
        text,
        format!("Unsupported grant type: {}...", "g".repeat(64))
    );

    let (_, _, text) = issue_err(
        &server,
        grant_request(&client, "x\"y\\z\u{1}\r\nw\u{e9}".to_owned()),
    )
    .await;
    assert_eq!(text, "Unsupported grant type: x?y?z???w?");
    assert!(in_rfc_alphabet(&text));

    let mut request = client_credentials_request(&client);
    request.scope = Some(format!("read {}", "a\"".repeat(400_000)));
    let (code, reason, text) = issue_err(&server, request).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "invalid_scope")
    );
    assert_eq!(text, format!("Malformed scope: {}...", "a?".repeat(32)));

    let (_, _, text) = issue_err(&server, grant_request(&client, "implicit".into())).await;
    assert_eq!(text, "Unsupported grant type: implicit");
}

#[tokio::test]
async fn a_long_grant_type_within_the_default_limit_comes_back_short() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let (code, reason, text) = issue_err(&server, grant_request(&client, "g".repeat(60_000))).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "unsupported_grant_type")
    );
    assert_eq!(
        text,
        format!("Unsupported grant type: {}...", "g".repeat(64))
    );
}
