//! Writes that lose a serialization conflict are retried, whole, and never
//! take effect twice: on a PostgreSQL database whose transactions are all
//! SERIALIZABLE, refreshes that race still have exactly one winner, no
//! request gets a server error, and `/metrics` counts the retries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const RETRIES: &str = "oauthd_store_write_retries_total{reason=\"serialization_failure\"}";

/// A refresh token of a fresh family, from a password login over HTTP.
async fn login(server: &Server, client: &TestClient) -> String {
    let login = [
        ("grant_type", "password"),
        ("username", "henry"),
        ("password", "pw-123456"),
    ];
    let (status, body) = post(server.url("/oauth/token"), client.clone(), &login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// A form POSTed as `client` to `url`, on a connection of its own; the body
/// as JSON, or null when empty.
async fn post(url: String, client: TestClient, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The same form POSTed `times` times at once, each on a connection of its
/// own, so that the requests really run side by side.
async fn side_by_side(
    url: String,
    client: &TestClient,
    forms: Vec<Vec<(&'static str, String)>>,
) -> Vec<(StatusCode, Value)> {
    let mut requests = tokio::task::JoinSet::new();
    for form in forms {
        let (url, client) = (url.clone(), client.clone());
        requests.spawn(async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(url, client, &form).await
        });
    }
    requests.join_all().await
}

fn refresh_form(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", token.to_owned()),
    ]
}

#[tokio::test]
async fn under_serializable_racing_refreshes_have_one_winner_and_no_server_error() {
    let db = TestDb::postgres_serializable();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "henry", "pw-123456", &[]);

    const ROUNDS: usize = 6;
    const RACERS: usize = 8;
    for round in 0..ROUNDS {
        let token = login(&server, &client).await;
        let forms = vec![refresh_form(&token); RACERS];
        let answers = side_by_side(server.url("/oauth/token"), &client, forms).await;
        let winners = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .count();
        assert_eq!(winners, 1, "round {round}: {answers:?}");
        for (status, body) in answers
            .iter()
            .filter(|(status, _)| *status != StatusCode::OK)
        {
            // Every loser is a replay: refused as such, never a 500 or a 503.
            assert_eq!(*status, StatusCode::BAD_REQUEST, "round {round}: {body}");
            assert_eq!(body["error"], "invalid_grant", "round {round}: {body}");
        }
    }
    // Single use held through the retries: each round stored its login's
    // token and exactly one successor.
    assert_eq!(rows(&db.url, "refresh_tokens").await, 2 * ROUNDS as i64);
    // The races did conflict, and the conflicts were retried rather than
    // answered with errors.
    let retries = metric(&server, RETRIES).await;
    assert!(retries > 0.0, "no serialization failure was retried");
}

#[tokio::test]
async fn under_serializable_concurrent_logins_and_revocations_all_succeed() {
    let db = TestDb::postgres_serializable();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "henry", "pw-123456", &[]);

    // Distinct families refreshed and revoked side by side: each write
    // touches the revocations counter or rows near another's.
    let login = vec![
        ("grant_type", "password".to_owned()),
        ("username", "henry".to_owned()),
        ("password", "pw-123456".to_owned()),
    ];
    let logins = side_by_side(server.url("/oauth/token"), &client, vec![login; 8]).await;
    let tokens: Vec<String> = logins
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    let revocations = tokens
        .iter()
        .map(|token| {
            vec![
                ("token", token.clone()),
                ("token_type_hint", "refresh_token".to_owned()),
            ]
        })
        .collect();
    let revoked = side_by_side(server.url("/oauth/revoke"), &client, revocations).await;
    assert!(
        revoked.iter().all(|(status, _)| *status == StatusCode::OK),
        "{revoked:?}"
    );
    for token in &tokens {
        let form = refresh_form(token);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = post(server.url("/oauth/token"), client.clone(), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error_description"], "Refresh token has been revoked");
    }
}
