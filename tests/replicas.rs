//! Several replicas on one database (SPEC §3, §5; issue 4): whatever one replica
//! or the CLI changes, every replica sees within a second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::codes::*;
use common::*;
use oauthd::grpc::pb;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(1);

async fn kids(server: &Server) -> Vec<String> {
    let jwks: Value = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Two replicas on one fresh database, each started with `args`, a client
/// allowed every grant and the user `rita`.
fn two_replicas(args: &[&str]) -> (TestDb, Server, Server, TestClient) {
    let db = TestDb::new();
    let a = Server::start_with(&db, args);
    let b = Server::start_with(&db, args);
    let client = create_full_client(&db.url);
    create_user(&db.url, "rita", "pw-123456", &[]);
    (db, a, b, client)
}

#[tokio::test]
async fn two_replicas_share_tokens_refresh_state_and_revocations() {
    let (_db, a, b, client) = two_replicas(&[]);
    let (mut at_a, mut at_b) = (a.grpc().await, b.grpc().await);

    let token = at_a
        .issue_token(password_request(&client, "rita", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        b.is_active(&client, &token.access_token).await,
        "a token from A is active at B"
    );

    let used = token.refresh_token.unwrap();
    let request = |refresh_token: &str| pb::RefreshTokenRequest {
        client: client.credentials(),
        refresh_token: refresh_token.into(),
        scope: None,
    };
    let rotated = at_b
        .refresh_token(request(&used))
        .await
        .unwrap()
        .into_inner();
    let replay = at_a.refresh_token(request(&used)).await.unwrap_err();
    assert_eq!(
        oauth_error(&replay).2,
        "Refresh token has already been used"
    );

    let fresh = at_a
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap()
        .into_inner();
    assert!(b.is_active(&client, &fresh.access_token).await);
    at_a.revoke(pb::RevokeRequest {
        client: client.credentials(),
        token: fresh.access_token.clone(),
        token_type_hint: None,
    })
    .await
    .unwrap();
    assert!(
        eventually(WITHIN, || async {
            !b.is_active(&client, &fresh.access_token).await
        })
        .await
    );
    // The replay at A revoked the family: the token B issued is dead at B too.
    assert!(!b.is_active(&client, &rotated.access_token).await);
}

#[tokio::test]
async fn a_disabled_client_is_refused_by_every_replica_within_a_second() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_full_client(&db.url);
    for server in [&a, &b] {
        server
            .grpc()
            .await
            .issue_token(client_credentials_request(&client))
            .await
            .unwrap();
    }
    cli(&db.url, &["client", "disable", &client.id]);
    for server in [&a, &b] {
        let refused = eventually(WITHIN, || async {
            server
                .grpc()
                .await
                .issue_token(client_credentials_request(&client))
                .await
                .is_err()
        })
        .await;
        assert!(refused);
    }
}

#[tokio::test]
async fn replicas_agree_at_every_step_of_a_key_rotation() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_full_client(&db.url);
    let old = a.client_credentials_token(&client).await.access_token;
    let old_kid = kid_of(&old);
    assert_eq!(kids(&a).await, vec![old_kid.clone()]);
    assert_eq!(kids(&b).await, vec![old_kid.clone()]);

    let rotated = cli(&db.url, &["keys", "rotate", "--key-publish-delay", "2"]);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    // Published everywhere before it signs anywhere.
    for server in [&a, &b] {
        assert!(eventually(WITHIN, || async { kids(server).await == both }).await);
        let token = server.client_credentials_token(&client).await;
        assert_eq!(
            kid_of(&token.access_token),
            old_kid,
            "the new key signs only after the publish delay"
        );
    }
    for server in [&a, &b] {
        let signs_new = eventually(Duration::from_secs(4), || async {
            let token = server.client_credentials_token(&client).await;
            kid_of(&token.access_token) == new_kid
        })
        .await;
        assert!(signs_new);
        assert!(
            server.is_active(&client, &old).await,
            "old tokens stay valid"
        );
        assert_eq!(kids(server).await, both, "the old key stays published");
    }
}

#[tokio::test]
async fn scheduled_rotation_happens_once_across_replicas() {
    let db = TestDb::new();
    let args = ["--key-rotation-interval", "1", "--key-publish-delay", "1"];
    let a = Server::start_with(&db, &args);
    let b = Server::start_with(&db, &args);
    // The schedule looks every ten seconds; both replicas are due at once.
    let rotated = eventually(Duration::from_secs(15), || async {
        cli(&db.url, &["keys", "list"]).as_array().unwrap().len() >= 2
    })
    .await;
    assert!(rotated);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let keys = cli(&db.url, &["keys", "list"]);
    assert!(
        keys.as_array().unwrap().len() <= 3,
        "one rotation per replica at most per round: {keys}"
    );
    assert_eq!(kids(&a).await, kids(&b).await);
}

#[tokio::test]
async fn a_code_redeemed_at_two_replicas_at_once_is_redeemed_once() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_client(&db.url, &CODE_CLIENT_ARGS);
    create_user(&db.url, "rita", "pw-123456", &[]);
    // Logged in at A, the code minted at B: the session lives in the database.
    let cookie = session_cookie(&a, &client, "rita", "pw-123456").await;
    let (mut at_a, mut at_b) = (a.grpc().await, b.grpc().await);
    for round in 0..5 {
        let code = mint_code(&b, &client, &cookie).await;
        let request = pb::IssueTokenRequest {
            client: client.credentials(),
            grant_type: "authorization_code".into(),
            code: Some(code),
            redirect_uri: Some(CODE_REDIRECT_URI.into()),
            code_verifier: Some(VERIFIER.into()),
            ..Default::default()
        };
        let (first, second) = tokio::join!(
            at_a.issue_token(request.clone()),
            at_b.issue_token(request.clone())
        );
        let won: Vec<_> = [first, second].into_iter().filter_map(Result::ok).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one redemption wins");
        // The loser was a replay: what the winner got is revoked everywhere.
        let token = won[0].get_ref().access_token.clone();
        for server in [&a, &b] {
            let inactive = eventually(WITHIN * 2, || async {
                !server.is_active(&client, &token).await
            })
            .await;
            assert!(inactive, "round {round}: the winner's token is revoked");
        }
    }
}

/// Logs `rita` in at A, then refreshes her token at A and B at once: exactly
/// one refresh wins, and the loser gets "Refresh token has already been used".
/// Returns what the winner got and the request, for the winner's next one.
async fn refresh_at_both_at_once(
    a: &Server,
    b: &Server,
    client: &TestClient,
    round: usize,
) -> (pb::TokenResponse, pb::RefreshTokenRequest) {
    let (mut at_a, mut at_b) = (a.grpc().await, b.grpc().await);
    let login = at_a
        .issue_token(password_request(client, "rita", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let request = pb::RefreshTokenRequest {
        client: client.credentials(),
        refresh_token: login.refresh_token.unwrap(),
        scope: None,
    };
    let (first, second) = tokio::join!(
        at_a.refresh_token(request.clone()),
        at_b.refresh_token(request.clone())
    );
    let (won, lost): (Vec<_>, Vec<_>) = [first, second].into_iter().partition(Result::is_ok);
    assert_eq!(won.len(), 1, "round {round}: exactly one refresh wins");
    let lost = lost.into_iter().next().unwrap().unwrap_err();
    assert_eq!(
        oauth_error(&lost).2,
        "Refresh token has already been used",
        "round {round}"
    );
    let won = won.into_iter().next().unwrap().unwrap().into_inner();
    let next = pb::RefreshTokenRequest {
        refresh_token: won.refresh_token.clone().unwrap(),
        ..request
    };
    (won, next)
}

#[tokio::test]
async fn a_refresh_token_exchanged_at_two_replicas_at_once_is_exchanged_once() {
    let (_db, a, b, client) = two_replicas(&[]);
    let mut at_b = b.grpc().await;
    for round in 0..5 {
        let (won, next) = refresh_at_both_at_once(&a, &b, &client, round).await;
        // The loser was a replay: what the winner got is revoked everywhere.
        let refused = at_b.refresh_token(next).await.unwrap_err();
        assert_eq!(
            oauth_error(&refused).2,
            "Refresh token has been revoked",
            "round {round}"
        );
        for server in [&a, &b] {
            let inactive = eventually(WITHIN * 2, || async {
                !server.is_active(&client, &won.access_token).await
            })
            .await;
            assert!(inactive, "round {round}: the winner's token is revoked");
        }
    }
}

#[tokio::test]
async fn within_the_reuse_grace_a_refresh_lost_at_one_replica_spares_the_winners_tokens() {
    let (_db, a, b, client) = two_replicas(&["--refresh-token-reuse-grace", "30"]);
    let mut at_b = b.grpc().await;
    for round in 0..5 {
        let (won, next) = refresh_at_both_at_once(&a, &b, &client, round).await;
        // Within the grace the loser revoked nothing: the winner's access
        // token stays active at both replicas, and its refresh token works.
        for server in [&a, &b] {
            assert!(
                server.is_active(&client, &won.access_token).await,
                "round {round}: the winner's token is active"
            );
        }
        at_b.refresh_token(next).await.unwrap();
    }
}

/// Replicas of a new release start together on a database it has never
/// migrated: they take turns at the migrations instead of racing to create
/// the same tables, and every one of them comes up and serves.
#[tokio::test]
async fn replicas_started_together_on_an_empty_database_all_come_up() {
    let db = TestDb::postgres_required();
    let starting: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || Server::start_on(&url, &[]))
        })
        .collect();
    let replicas: Vec<Server> = starting
        .into_iter()
        .map(|replica| replica.join().expect("a replica did not come up"))
        .collect();
    let client = create_full_client(&db.url);
    for replica in &replicas {
        let token = replica.client_credentials_token(&client).await;
        assert!(replicas[0].is_active(&client, &token.access_token).await);
    }
}
