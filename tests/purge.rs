//! The purge of expired state (SPEC §10): `oauthd purge` and the janitor every
//! server runs, on SQLite and (with `OAUTHD_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::codes::{CODE_CLIENT_ARGS, mint_code, session_cookie};
use common::*;
use oauthd::grpc::pb;
use serde_json::{Value, json};

/// Every table with expiring rows, as `oauthd purge` names its kind.
const KINDS: [(&str, &str); 6] = [
    ("authorization_code", "authorization_codes"),
    ("session", "sessions"),
    ("api_key", "api_keys"),
    ("refresh_token", "refresh_tokens"),
    ("access_token", "access_tokens"),
    ("revocation", "revocations"),
];

/// Rows in every table with expiring rows, in the order of `KINDS`.
async fn every_count(url: &str) -> Vec<i64> {
    let mut counts = Vec::new();
    for (_, table) in KINDS {
        counts.push(rows(url, table).await);
    }
    counts
}

fn refresh(client: &TestClient, token: &str) -> pb::RefreshTokenRequest {
    pb::RefreshTokenRequest {
        client: client.credentials(),
        refresh_token: token.into(),
        scope: None,
    }
}

/// Gives every kind one row that expires within a second: an opaque access
/// token, a refresh token, a revoked JWT, a code, a session and an API key.
/// `short` and `jwt` are two servers on one database, both with lifetimes of a second or two.
async fn one_expiring_row_of_each_kind(short: &Server, jwt: &Server, url: &str) {
    let machine = create_client(url, &["--scopes", "read"]);
    let opaque = short.client_credentials_token(&machine).await;
    assert!(!opaque.access_token.is_empty());

    create_user(url, "ines", "pw-123456", &[]);
    let app = create_client(url, &["--grant-types", "password,refresh_token"]);
    let mut grpc = short.grpc().await;
    grpc.issue_token(password_request(&app, "ines", "pw-123456"))
        .await
        .unwrap();

    let revoked = jwt.client_credentials_token(&machine).await.access_token;
    jwt.grpc()
        .await
        .revoke(pb::RevokeRequest {
            client: machine.credentials(),
            token: revoked,
            token_type_hint: None,
        })
        .await
        .unwrap();

    let web = create_client(url, &CODE_CLIENT_ARGS);
    let cookie = session_cookie(short, &web, "ines", "pw-123456").await;
    mint_code(short, &web, &cookie).await;

    cli(
        url,
        &[
            "apikey",
            "create",
            "--client",
            &machine.id,
            "--expires-in",
            "1",
        ],
    );
}

/// Servers with every lifetime at a second or two, and no janitor of their own.
fn short_lived_servers(db: &TestDb) -> (Server, Server) {
    let short = [
        // Two seconds: a JWT revoked after its expiry leaves no row to purge.
        "--access-token-ttl",
        "2",
        "--refresh-token-ttl",
        "1",
        "--authorization-code-ttl",
        "1",
        // Long enough for a login and the code minted right after it.
        "--session-ttl",
        "2",
        "--purge-interval",
        "0",
    ];
    let opaque = [&short[..], &["--token-format", "opaque"]].concat();
    (
        Server::start_with(db, &opaque),
        Server::start_with(db, &short),
    )
}

#[tokio::test]
async fn purge_deletes_what_expired_by_kind_and_then_finds_nothing() {
    let db = TestDb::new();
    let (short, jwt) = short_lived_servers(&db);
    one_expiring_row_of_each_kind(&short, &jwt, &db.url).await;
    for (kind, table) in KINDS {
        assert!(rows(&db.url, table).await >= 1, "no {kind} to purge");
    }
    // Every row above has expired two seconds after it was made.
    tokio::time::sleep(Duration::from_millis(3100)).await;

    let purged = cli(&db.url, &["purge"]);
    let expected: Value = json!({
        "authorization_code": 1,
        "session": 1,
        "api_key": 1,
        "refresh_token": 1,
        // The opaque token of the machine client, and the password grant's.
        "access_token": 2,
        "revocation": 1,
    });
    assert_eq!(purged, expected);
    for (kind, table) in KINDS {
        assert_eq!(rows(&db.url, table).await, 0, "{kind} left behind");
    }
    let again = cli(&db.url, &["purge"]);
    assert!(
        again.as_object().unwrap().values().all(|n| n == 0),
        "{again}"
    );
}

#[tokio::test]
async fn purge_keeps_what_has_not_expired() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--purge-interval", "0"]);
    let client = create_full_client(&db.url);
    create_user(&db.url, "jon", "pw-123456", &[]);
    cli(&db.url, &["apikey", "create", "--client", &client.id]);
    let mut grpc = server.grpc().await;
    grpc.issue_token(password_request(&client, "jon", "pw-123456"))
        .await
        .unwrap();
    let before = every_count(&db.url).await;
    // In the order of KINDS: one API key, one refresh token.
    assert_eq!(before, [0, 0, 1, 1, 0, 0]);

    let purged = cli(&db.url, &["purge"]);
    assert!(
        purged.as_object().unwrap().values().all(|n| n == 0),
        "{purged}"
    );
    let after = every_count(&db.url).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_used_refresh_token_is_still_a_replay_after_a_purge() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--purge-interval", "0"]);
    let client = create_full_client(&db.url);
    create_user(&db.url, "kim", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let first = grpc
        .issue_token(password_request(&client, "kim", "pw-123456"))
        .await
        .unwrap()
        .into_inner()
        .refresh_token
        .unwrap();
    let second = grpc
        .refresh_token(refresh(&client, &first))
        .await
        .unwrap()
        .into_inner()
        .refresh_token
        .unwrap();

    cli(&db.url, &["purge"]);

    let replay = grpc
        .refresh_token(refresh(&client, &first))
        .await
        .unwrap_err();
    let (_, reason, description) = oauth_error(&replay);
    assert_eq!(reason, "invalid_grant");
    assert_eq!(description, "Refresh token has already been used");
    // The replay revoked the family, the legitimate successor included.
    let after = grpc
        .refresh_token(refresh(&client, &second))
        .await
        .unwrap_err();
    let (_, reason, description) = oauth_error(&after);
    assert_eq!(reason, "invalid_grant");
    assert_eq!(description, "Refresh token has been revoked");
}

#[tokio::test]
async fn the_janitor_purges_in_the_background_and_counts_it() {
    let db = TestDb::new();
    let server = Server::start_with(
        &db,
        &[
            "--token-format",
            "opaque",
            "--access-token-ttl",
            "1",
            "--purge-interval",
            "1",
        ],
    );
    let client = create_client(&db.url, &[]);
    server.client_credentials_token(&client).await;
    cli(
        &db.url,
        &[
            "apikey",
            "create",
            "--client",
            &client.id,
            "--expires-in",
            "1",
        ],
    );

    let gone = eventually(Duration::from_secs(10), || async {
        rows(&db.url, "access_tokens").await == 0 && rows(&db.url, "api_keys").await == 0
    })
    .await;
    assert!(
        gone,
        "the janitor left expired rows; log:\n{}",
        server.log()
    );
    for kind in ["access_token", "api_key"] {
        let series = format!("oauthd_purged_rows_total{{kind=\"{kind}\"}}");
        assert_eq!(metric(&server, &series).await, 1.0, "{series}");
    }
}
