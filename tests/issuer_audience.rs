//! RFC 9068 §4: introspection checks `iss` and `aud`. Servers on one database
//! share its signing keys, so a token signed with our key may come from a
//! server configured with another issuer or audience; it is inactive here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

async fn introspect_http(server: &Server, caller: &TestClient, token: &str) -> Value {
    reqwest::Client::new()
        .post(server.url("/oauth/introspect"))
        .basic_auth(&caller.id, caller.secret.as_ref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn revoke_http(server: &Server, caller: &TestClient, token: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .basic_auth(&caller.id, caller.secret.as_ref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A token minted by a server started with `minting` is active on a server
/// with the same settings and inactive on each server started with `foreign`.
async fn check_foreign_tokens_are_inactive(format: &str) {
    let db = TestDb::new();
    let ours = ["--issuer", "https://a.example", "--token-format", format];
    let minting = Server::start_with(&db, &ours);
    let same = Server::start_with(&db, &ours);
    let other_issuer = Server::start_with(
        &db,
        &["--issuer", "https://b.example", "--token-format", format],
    );
    let other_audience = Server::start_with(
        &db,
        &[
            "--issuer",
            "https://a.example",
            "--audience",
            "https://api.other.example",
            "--token-format",
            format,
        ],
    );
    let client = create_full_client(&db.url);
    let token = minting.client_credentials_token(&client).await.access_token;

    for _ in 0..2 {
        // Twice: the second answer comes from the verified-JWT cache.
        assert!(minting.is_active(&client, &token).await);
        assert!(same.is_active(&client, &token).await);
        assert!(!other_issuer.is_active(&client, &token).await);
        assert!(!other_audience.is_active(&client, &token).await);
    }
    assert_eq!(
        introspect_http(&other_issuer, &client, &token).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect_http(&other_audience, &client, &token).await,
        json!({"active": false})
    );
    let active = introspect_http(&same, &client, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["iss"], "https://a.example");

    // To the other servers the token is unknown, so revoking it there is the
    // empty 200 of RFC 7009 §2.2 and leaves it alone.
    assert_eq!(revoke_http(&other_issuer, &client, &token).await, 200);
    assert_eq!(revoke_http(&other_audience, &client, &token).await, 200);
    assert!(minting.is_active(&client, &token).await);

    // A token the other issuer mints is foreign to the first servers in turn.
    let theirs = other_issuer
        .client_credentials_token(&client)
        .await
        .access_token;
    assert!(other_issuer.is_active(&client, &theirs).await);
    assert!(!minting.is_active(&client, &theirs).await);
}

#[tokio::test]
async fn a_jwt_of_another_issuer_or_audience_is_inactive() {
    check_foreign_tokens_are_inactive("jwt").await;
}

#[tokio::test]
async fn an_opaque_token_of_another_issuer_or_audience_is_inactive() {
    check_foreign_tokens_are_inactive("opaque").await;
}
