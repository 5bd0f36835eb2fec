//! Refresh tokens: rotation on every use, replay detection revoking the family
//! (RFC 9700 §4.14.2), and exactly one winner when refreshes race.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oauthd::grpc::pb;
use oauthd::grpc::pb::token_service_client::TokenServiceClient;
use reqwest::StatusCode;
use serde_json::Value;
use tonic::transport::Channel;

fn refresh(client: &TestClient, token: &str) -> pb::RefreshTokenRequest {
    pb::RefreshTokenRequest {
        client: client.credentials(),
        refresh_token: token.into(),
        scope: None,
    }
}

async fn login(grpc: &mut TokenServiceClient<Channel>, client: &TestClient) -> pb::TokenResponse {
    grpc.issue_token(password_request(client, "henry", "pw-123456"))
        .await
        .unwrap()
        .into_inner()
}

fn setup(args: &[&str]) -> (TestDb, Server, TestClient) {
    let db = TestDb::new();
    let server = Server::start_with(&db, args);
    let client = create_full_client(&db.url);
    create_user(&db.url, "henry", "pw-123456", &[]);
    (db, server, client)
}

#[tokio::test]
async fn every_refresh_rotates_the_refresh_token() {
    let (_db, server, client) = setup(&[]);
    let mut grpc = server.grpc().await;
    let first = login(&mut grpc, &client).await;
    let second = grpc
        .refresh_token(refresh(&client, first.refresh_token.as_ref().unwrap()))
        .await
        .unwrap()
        .into_inner();
    let third = grpc
        .refresh_token(refresh(&client, second.refresh_token.as_ref().unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(first.refresh_token, second.refresh_token);
    assert_ne!(second.refresh_token, third.refresh_token);
    assert_ne!(second.access_token, third.access_token);
}

#[tokio::test]
async fn reused_refresh_token_revokes_every_descendant() {
    let (_db, server, client) = setup(&[]);
    let mut grpc = server.grpc().await;
    let first = login(&mut grpc, &client).await;
    let used = first.refresh_token.unwrap();
    let second = grpc
        .refresh_token(refresh(&client, &used))
        .await
        .unwrap()
        .into_inner();

    let replay = grpc
        .refresh_token(refresh(&client, &used))
        .await
        .unwrap_err();
    assert_eq!(
        oauth_error(&replay),
        (
            tonic::Code::InvalidArgument,
            "invalid_grant".into(),
            "Refresh token has already been used".into()
        )
    );
    // The descendant issued to the legitimate holder is dead too, with its access token.
    let descendant = grpc
        .refresh_token(refresh(&client, second.refresh_token.as_ref().unwrap()))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&descendant).2, "Refresh token has been revoked");
    for access in [&first.access_token, &second.access_token] {
        let answer = grpc
            .introspect(introspect_request(&client, access))
            .await
            .unwrap()
            .into_inner();
        assert!(!answer.active);
    }
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let (_db, server, client) = setup(&[]);
    let mut grpc = server.grpc().await;
    let token = login(&mut grpc, &client).await.refresh_token.unwrap();
    let mut racers = Vec::new();
    for _ in 0..12 {
        // Separate connections, so the requests really run side by side.
        let mut racer = TokenServiceClient::new(server.channel().await);
        let request = refresh(&client, &token);
        racers.push(tokio::spawn(
            async move { racer.refresh_token(request).await },
        ));
    }
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => wins += 1,
            Err(status) => {
                let (code, reason, _) = oauth_error(&status);
                assert_eq!(
                    (code, reason.as_str()),
                    (tonic::Code::InvalidArgument, "invalid_grant")
                );
            }
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn concurrent_refreshes_of_different_tokens_all_succeed_and_keep_their_grant() {
    let (db, server, client) = setup(&[]);
    let other = create_full_client(&db.url);
    let mut grpc = server.grpc().await;
    let mut tokens = Vec::new();
    for _ in 0..16 {
        tokens.push(login(&mut grpc, &client).await.refresh_token.unwrap());
    }
    // One more, presented by a client it was not issued to, in the same burst.
    let foreign = login(&mut grpc, &client).await.refresh_token.unwrap();
    let mut racers = Vec::new();
    for (token, caller) in tokens
        .iter()
        .map(|token| (token, &client))
        .chain([(&foreign, &other)])
    {
        let mut racer = TokenServiceClient::new(server.channel().await);
        let request = refresh(caller, token);
        racers.push(tokio::spawn(
            async move { racer.refresh_token(request).await },
        ));
    }
    let mut successors = Vec::new();
    for racer in racers {
        successors.push(racer.await.unwrap());
    }
    let refused = successors.pop().unwrap().unwrap_err();
    assert_eq!(
        oauth_error(&refused).2,
        "Refresh token was issued to another client"
    );
    let mut fresh = std::collections::HashSet::new();
    for successor in successors {
        let successor = successor.unwrap().into_inner();
        assert_eq!(successor.scope, "read write");
        let access = grpc
            .introspect(introspect_request(&client, &successor.access_token))
            .await
            .unwrap()
            .into_inner();
        assert!(access.active);
        assert_eq!(access.username.as_deref(), Some("henry"));
        let next = successor.refresh_token.unwrap();
        assert!(
            fresh.insert(next.clone()),
            "a refresh token was issued twice"
        );
        grpc.refresh_token(refresh(&client, &next)).await.unwrap();
    }
    // The foreign presentation spent nothing: the rightful client still refreshes.
    grpc.refresh_token(refresh(&client, &foreign))
        .await
        .unwrap();
}

#[tokio::test]
async fn refresh_errors_say_which_problem_they_are() {
    let (db, server, client) = setup(&["--refresh-token-ttl", "2"]);
    let other = create_full_client(&db.url);
    let mut grpc = server.grpc().await;

    let unknown = grpc
        .refresh_token(refresh(&client, "not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&unknown).2, "Refresh token is invalid");

    let token = login(&mut grpc, &client).await.refresh_token.unwrap();
    let foreign = grpc
        .refresh_token(refresh(&other, &token))
        .await
        .unwrap_err();
    assert_eq!(
        oauth_error(&foreign).2,
        "Refresh token was issued to another client"
    );

    let revoked_token = login(&mut grpc, &client).await.refresh_token.unwrap();
    grpc.revoke(pb::RevokeRequest {
        client: client.credentials(),
        token: revoked_token.clone(),
        token_type_hint: None,
    })
    .await
    .unwrap();
    let revoked = grpc
        .refresh_token(refresh(&client, &revoked_token))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&revoked).2, "Refresh token has been revoked");

    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let expired = grpc
        .refresh_token(refresh(&client, &token))
        .await
        .unwrap_err();
    assert_eq!(
        oauth_error(&expired),
        (
            tonic::Code::InvalidArgument,
            "invalid_grant".into(),
            "Refresh token has expired".into()
        )
    );
}

#[tokio::test]
async fn a_locked_user_cannot_refresh() {
    let (db, server, client) = setup(&[]);
    let mut grpc = server.grpc().await;
    let token = login(&mut grpc, &client).await.refresh_token.unwrap();
    cli(&db.url, &["user", "lock", "henry"]);
    let refused = grpc
        .refresh_token(refresh(&client, &token))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&refused).2, "User is locked");
    // The refusal did not use the token up: once unlocked, it works.
    cli(&db.url, &["user", "unlock", "henry"]);
    grpc.refresh_token(refresh(&client, &token)).await.unwrap();
}

/// `POST /oauth/token` refreshing `token` as `client`, on a connection of its own.
async fn refresh_over_http(
    server: &Server,
    client: &TestClient,
    token: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Two refreshes with one fresh token at once, as two tabs send them: one gets
/// 200 and one `invalid_grant`, "Refresh token has already been used". Returns
/// the winner's new refresh token.
async fn two_tabs_refresh(server: &Server, client: &TestClient) -> String {
    let mut grpc = server.grpc().await;
    let token = login(&mut grpc, client).await.refresh_token.unwrap();
    let (first, second) = tokio::join!(
        refresh_over_http(server, client, &token),
        refresh_over_http(server, client, &token)
    );
    let (won, lost) = if first.0 == StatusCode::OK {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(won.0, StatusCode::OK, "one refresh wins: {won:?} {lost:?}");
    assert_eq!(lost.0, StatusCode::BAD_REQUEST);
    assert_eq!(lost.1["error"], "invalid_grant");
    assert_eq!(
        lost.1["error_description"],
        "Refresh token has already been used"
    );
    won.1["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn within_the_reuse_grace_the_loser_of_two_tabs_leaves_the_winner_its_tokens() {
    let (_db, server, client) = setup(&["--refresh-token-reuse-grace", "30"]);
    for _ in 0..3 {
        let winner = two_tabs_refresh(&server, &client).await;
        let (status, body) = refresh_over_http(&server, &client, &winner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn without_a_reuse_grace_the_loser_of_two_tabs_revokes_the_winners_tokens() {
    let (_db, server, client) = setup(&[]);
    for _ in 0..3 {
        let winner = two_tabs_refresh(&server, &client).await;
        let (status, body) = refresh_over_http(&server, &client, &winner).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "Refresh token has been revoked");
    }
}

#[test]
fn a_reuse_grace_outside_zero_to_the_refresh_token_ttl_is_refused_at_start() {
    let refused = [
        (&["--refresh-token-reuse-grace=-1"][..], None),
        (
            &[
                "--refresh-token-ttl",
                "60",
                "--refresh-token-reuse-grace",
                "61",
            ][..],
            None,
        ),
        (&["--refresh-token-ttl", "60"][..], Some("61")),
    ];
    for (args, env) in refused {
        let mut command = std::process::Command::new(common::BIN);
        command
            .arg("serve")
            .args(args)
            .args(["--database-url", "sqlite::memory:"])
            .env_remove("OAUTHD_CONFIG");
        if let Some(grace) = env {
            command.env("OAUTHD_REFRESH_TOKEN_REUSE_GRACE", grace);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{args:?} {env:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("invalid setting refresh_token_reuse_grace"),
            "{args:?} {env:?}: {stderr}"
        );
    }
}
