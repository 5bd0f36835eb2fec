//! Introspection (RFC 7662) and revocation (RFC 7009) over gRPC, including forged
//! tokens and tokens whose client or user has since been stopped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use oauthd::grpc::pb;

async fn becomes_inactive(server: &Server, caller: &TestClient, token: &str) -> bool {
    eventually(Duration::from_millis(1500), || async {
        !server.is_active(caller, token).await
    })
    .await
}

fn revoke_request(client: &TestClient, token: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        client: client.credentials(),
        token: token.into(),
        token_type_hint: None,
    }
}

#[tokio::test]
async fn an_active_token_reports_every_member_and_an_inactive_one_nothing_else() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let resource_server = create_client(&db.url, &[]);
    create_user(&db.url, "ivan", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let token = grpc
        .issue_token(password_request(&client, "ivan", "pw-123456"))
        .await
        .unwrap()
        .into_inner();

    let answer = grpc
        .introspect(introspect_request(&resource_server, &token.access_token))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    assert_eq!(answer.scope.as_deref(), Some("read write"));
    assert_eq!(answer.client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(answer.username.as_deref(), Some("ivan"));
    assert_eq!(answer.token_type.as_deref(), Some("Bearer"));
    assert_eq!(answer.iss.as_deref(), Some("http://localhost:3030"));
    assert!(answer.exp.unwrap() > answer.iat.unwrap());
    assert!(
        answer.nbf.is_some()
            && answer.sub.is_some()
            && answer.aud.is_some()
            && answer.jti.is_some()
    );

    grpc.revoke(revoke_request(&client, &token.access_token))
        .await
        .unwrap();
    let answer = grpc
        .introspect(introspect_request(&resource_server, &token.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer, pb::IntrospectResponse::default());
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_the_access_tokens_of_its_family() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "judy", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let first = grpc
        .issue_token(password_request(&client, "judy", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let second = grpc
        .refresh_token(pb::RefreshTokenRequest {
            client: client.credentials(),
            refresh_token: first.refresh_token.unwrap(),
            scope: None,
        })
        .await
        .unwrap()
        .into_inner();
    let refresh = second.refresh_token.unwrap();
    assert!(
        server.is_active(&client, &refresh).await,
        "refresh tokens introspect too"
    );
    grpc.revoke(revoke_request(&client, &refresh))
        .await
        .unwrap();
    assert!(!server.is_active(&client, &first.access_token).await);
    assert!(!server.is_active(&client, &second.access_token).await);
    assert!(!server.is_active(&client, &refresh).await);
}

#[tokio::test]
async fn unknown_tokens_revoke_quietly_and_foreign_tokens_are_refused() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let other = create_full_client(&db.url);
    let mut grpc = server.grpc().await;
    grpc.revoke(revoke_request(&client, "no-such-token"))
        .await
        .unwrap();
    let token = grpc
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap()
        .into_inner();
    let refused = grpc
        .revoke(revoke_request(&other, &token.access_token))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&refused).1, "unauthorized_client");
    assert!(server.is_active(&client, &token.access_token).await);
}

#[tokio::test]
async fn tokens_go_inactive_when_their_client_is_disabled_or_deleted() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let resource_server = create_client(&db.url, &[]);
    let disabled = create_full_client(&db.url);
    let deleted = create_full_client(&db.url);
    let mut grpc = server.grpc().await;
    let a = grpc
        .issue_token(client_credentials_request(&disabled))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let b = grpc
        .issue_token(client_credentials_request(&deleted))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    cli(&db.url, &["client", "disable", &disabled.id]);
    cli(&db.url, &["client", "delete", &deleted.id]);
    assert!(becomes_inactive(&server, &resource_server, &a).await);
    assert!(becomes_inactive(&server, &resource_server, &b).await);
    cli(&db.url, &["client", "enable", &disabled.id]);
    assert!(
        eventually(Duration::from_millis(1500), || server
            .is_active(&resource_server, &a))
        .await
    );
}

#[tokio::test]
async fn tokens_go_inactive_when_their_user_is_locked_or_disabled() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "kim", "pw-123456", &[]);
    create_user(&db.url, "lee", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let kim = grpc
        .issue_token(password_request(&client, "kim", "pw-123456"))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let lee = grpc
        .issue_token(password_request(&client, "lee", "pw-123456"))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    cli(&db.url, &["user", "lock", "kim"]);
    cli(&db.url, &["user", "disable", "lee"]);
    assert!(becomes_inactive(&server, &client, &kim).await);
    assert!(becomes_inactive(&server, &client, &lee).await);
}

// The server that counts the locking failure stops the user's tokens before
// it answers: its own next request does not wait for a sync to see the lock.
#[tokio::test]
async fn the_server_that_locks_a_user_refuses_their_tokens_at_once() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--max-failed-logins", "2"]);
    let client = create_full_client(&db.url);
    create_user(&db.url, "lou", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let tokens = grpc
        .issue_token(password_request(&client, "lou", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    assert!(server.is_active(&client, &tokens.access_token).await);
    for _ in 0..2 {
        grpc.issue_token(password_request(&client, "lou", "wrong"))
            .await
            .unwrap_err();
    }
    assert!(!server.is_active(&client, &tokens.access_token).await);
    let refused = grpc
        .refresh_token(pb::RefreshTokenRequest {
            client: client.credentials(),
            refresh_token: tokens.refresh_token.unwrap(),
            scope: None,
        })
        .await
        .unwrap_err();
    let (_, code, description) = oauth_error(&refused);
    assert_eq!(
        (code.as_str(), description.as_str()),
        ("invalid_grant", "User is locked")
    );
}

#[tokio::test]
async fn expired_tokens_are_inactive() {
    let db = TestDb::new();
    // Two seconds: with whole-second timestamps, one could expire at once.
    let server = Server::start_with(&db, &["--access-token-ttl", "2"]);
    let client = create_full_client(&db.url);
    let token = server.client_credentials_token(&client).await;
    assert!(server.is_active(&client, &token.access_token).await);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!server.is_active(&client, &token.access_token).await);
}

#[tokio::test]
async fn forged_tokens_are_inactive() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let token = server.client_credentials_token(&client).await;
    let parts: Vec<&str> = token.access_token.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();

    // A tampered payload under the original signature.
    claims["scope"] = "read write admin".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);

    // alg "none" with no signature.
    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let unsigned = format!("{none_header}.{payload}.");

    // HS256 "signed" with the published public key as the HMAC secret.
    let jwks: serde_json::Value = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_key = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.to_owned());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public_key),
    )
    .unwrap();

    assert!(server.is_active(&client, &token.access_token).await);
    for forged in [&tampered, &unsigned, &confused, "a.b.c", "garbage"] {
        assert!(!server.is_active(&client, forged).await, "{forged}");
    }
}

#[tokio::test]
async fn only_confidential_clients_may_introspect() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let public = create_client(&db.url, &["--public", "--grant-types", "password"]);
    let token = server.client_credentials_token(&client).await;
    let refused = server
        .grpc()
        .await
        .introspect(introspect_request(&public, &token.access_token))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&refused).1, "invalid_client");
}
