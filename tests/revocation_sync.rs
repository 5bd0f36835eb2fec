//! Revocations across replicas (issue 11): each kind of change has its own
//! counter, a revocation moves only the revocations counter and only when it
//! writes, replicas read revocations incrementally, and each client's
//! revocations that write are bounded per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use oauthd::grpc::pb;
use oauthd::oauth::storage::AccessTokenStore as _;
use oauthd::store::SeaStore;
use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};

const WITHIN: Duration = Duration::from_secs(1);

/// The `state_version` rows of the kinds, as the migration numbers them.
const CLIENTS: i32 = 2;
const USERS: i32 = 3;
const KEYS: i32 = 4;
const REVOCATIONS: i32 = 5;

/// Every `state_version` row, read from the database itself.
async fn versions(url: &str) -> BTreeMap<i32, i64> {
    let db = sea_orm::Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, version FROM state_version",
        ))
        .await
        .unwrap();
    let versions = rows
        .iter()
        .map(|row| {
            (
                row.try_get::<i32>("", "id").unwrap(),
                row.try_get::<i64>("", "version").unwrap(),
            )
        })
        .collect();
    db.close().await.unwrap();
    versions
}

/// `after` minus `before`, row by row, leaving out the rows that did not move.
fn moved(before: &BTreeMap<i32, i64>, after: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    after
        .iter()
        .map(|(id, version)| (*id, version - before[id]))
        .filter(|(_, delta)| *delta != 0)
        .collect()
}

fn revoke_request(client: &TestClient, token: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        client: client.credentials(),
        token: token.into(),
        token_type_hint: None,
    }
}

async fn revoke_over_http(server: &Server, client: &TestClient, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_revocation_moves_only_the_revocations_counter_and_reaches_the_other_replica() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_full_client(&db.url);
    let tokens: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(a.client_credentials_token(&client).await.access_token);
        }
        tokens
    };
    for token in &tokens {
        assert!(b.is_active(&client, token).await);
    }

    let mut at_a = a.grpc().await;
    for (n, token) in tokens.iter().enumerate() {
        let before = versions(&db.url).await;
        at_a.revoke(revoke_request(&client, token)).await.unwrap();
        assert_eq!(
            moved(&before, &versions(&db.url).await),
            BTreeMap::from([(REVOCATIONS, 1)]),
            "revocation {n} moves the revocations counter and nothing else"
        );
        assert!(
            eventually(WITHIN, || async { !b.is_active(&client, token).await }).await,
            "revocation {n} reaches B within a second"
        );
    }
}

#[tokio::test]
async fn revoking_again_writes_nothing_and_moves_no_counter() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "olga", "pw-123456", &[]);
    let issued = a
        .grpc()
        .await
        .issue_token(password_request(&client, "olga", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let refresh = issued.refresh_token.unwrap();
    let access = issued.access_token;

    let mut at_a = a.grpc().await;
    at_a.revoke(revoke_request(&client, &refresh))
        .await
        .unwrap();
    assert!(eventually(WITHIN, || async { !b.is_active(&client, &access).await }).await);
    let before = versions(&db.url).await;
    let mut at_b = b.grpc().await;
    for token in [&access, &refresh] {
        at_a.revoke(revoke_request(&client, token)).await.unwrap();
        at_b.revoke(revoke_request(&client, token)).await.unwrap();
        assert_eq!(
            revoke_over_http(&a, &client, token).await.status(),
            200,
            "revoking a revoked token is still a success (RFC 7009 §2.2)"
        );
    }
    assert_eq!(
        versions(&db.url).await,
        before,
        "no-op revocations move no counter"
    );
}

/// The store itself, below the core's in-memory check: the second revocation of
/// a jti finds it recorded, writes nothing and leaves the counter alone, even
/// from a process whose memory has not seen the first.
#[tokio::test]
async fn the_store_records_a_revocation_once() {
    let db = TestDb::new();
    let first = SeaStore::open(&db.url, 2, None).await.unwrap();
    first.sync_now().await.unwrap();
    let second = SeaStore::open(&db.url, 2, None).await.unwrap();
    second.sync_now().await.unwrap();
    let jti = oauthd::tokens::secret::new_id();
    let expires_at = unix_now() + 600;

    let before = versions(&db.url).await;
    assert!(first.revoke_access(&jti, expires_at).await.unwrap());
    let once = versions(&db.url).await;
    assert_eq!(moved(&before, &once), BTreeMap::from([(REVOCATIONS, 1)]));
    assert!(!second.revoke_access(&jti, expires_at).await.unwrap());
    assert_eq!(versions(&db.url).await, once);

    assert!(!second.is_revoked(&jti), "not synced yet");
    second.sync_now().await.unwrap();
    assert!(second.is_revoked(&jti), "read by the next sync");
    assert_eq!(second.revocations_held(), 1);
}

#[tokio::test]
async fn revoked_tokens_stay_revoked_through_every_other_reload_and_a_restart() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_full_client(&db.url);
    let other = create_client(&db.url, &[]);
    create_user(&db.url, "pia", "pw-123456", &[]);
    let revoked = a.client_credentials_token(&client).await.access_token;
    a.grpc()
        .await
        .revoke(revoke_request(&client, &revoked))
        .await
        .unwrap();
    assert!(eventually(WITHIN, || async { !b.is_active(&client, &revoked).await }).await);

    // Each of these makes B reload one other kind (the CLI returns once
    // servers have reloaded); each moves only its own counter.
    let changes: [(&[&str], i32); 3] = [
        (&["client", "disable", &other.id], CLIENTS),
        (&["user", "lock", "pia"], USERS),
        (&["keys", "rotate"], KEYS),
    ];
    for (args, kind) in changes {
        let before = versions(&db.url).await;
        cli(&db.url, args);
        assert_eq!(
            moved(&before, &versions(&db.url).await),
            BTreeMap::from([(kind, 1)]),
            "{args:?} moves only its own counter"
        );
        assert!(
            !b.is_active(&client, &revoked).await,
            "still revoked after {args:?}"
        );
    }

    // Revocations keep arriving incrementally after those reloads.
    let later = a.client_credentials_token(&client).await.access_token;
    assert!(b.is_active(&client, &later).await);
    a.grpc()
        .await
        .revoke(revoke_request(&client, &later))
        .await
        .unwrap();
    assert!(eventually(WITHIN, || async { !b.is_active(&client, &later).await }).await);

    drop(b);
    let c = Server::start(&db);
    assert!(
        !c.is_active(&client, &revoked).await,
        "a fresh replica loads them all"
    );
    assert!(!c.is_active(&client, &later).await);
    let live = c.client_credentials_token(&client).await.access_token;
    assert!(c.is_active(&client, &live).await);
}

#[tokio::test]
async fn concurrent_revocations_at_both_replicas_all_reach_both() {
    let db = TestDb::new();
    let args = ["--revocations-per-second", "0"];
    let a = Server::start_with(&db, &args);
    let b = Server::start_with(&db, &args);
    let client = create_full_client(&db.url);
    let mut tokens = Vec::new();
    for _ in 0..24 {
        tokens.push(a.client_credentials_token(&client).await.access_token);
    }
    let mut revocations = tokio::task::JoinSet::new();
    for (n, token) in tokens.iter().enumerate() {
        let server = if n % 2 == 0 { &a } else { &b };
        let mut grpc = server.grpc().await;
        let request = revoke_request(&client, token);
        revocations.spawn(async move { grpc.revoke(request).await.map(drop) });
    }
    while let Some(done) = revocations.join_next().await {
        done.unwrap().unwrap();
    }
    for server in [&a, &b] {
        for token in &tokens {
            assert!(
                eventually(WITHIN, || async { !server.is_active(&client, token).await }).await,
                "every revocation reaches every replica"
            );
        }
    }
}

#[tokio::test]
async fn the_bound_refuses_revocations_past_it_and_the_server_keeps_serving() {
    const LIMIT: usize = 2;
    const TOKENS: usize = 10;
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--revocations-per-second", "2"]);
    let client = create_full_client(&db.url);
    let bystander = create_full_client(&db.url);
    let mut tokens = Vec::new();
    for _ in 0..TOKENS {
        tokens.push(server.client_credentials_token(&client).await.access_token);
    }

    let started = unix_now();
    let mut revocations = tokio::task::JoinSet::new();
    for token in tokens.clone() {
        let url = server.url("/oauth/revoke");
        let client = client.clone();
        revocations.spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .basic_auth(&client.id, client.secret.as_deref())
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = if status == 200 {
                serde_json::Value::Null
            } else {
                response.json().await.unwrap()
            };
            (token, status, body)
        });
    }
    let mut revoked = Vec::new();
    let mut refused = Vec::new();
    while let Some(done) = revocations.join_next().await {
        let (token, status, body) = done.unwrap();
        match status {
            200 => revoked.push(token),
            503 => {
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                refused.push(token);
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    let seconds = (unix_now() - started + 1) as usize;
    assert!(
        revoked.len() <= LIMIT * seconds,
        "{} revoked within {seconds} clock seconds",
        revoked.len()
    );
    assert!(revoked.len() >= LIMIT, "the first ones pass");
    assert!(
        !refused.is_empty(),
        "{TOKENS} revocations at once go past the bound"
    );

    // A refused revocation wrote nothing: the token is still active, as RFC
    // 7009 §2.2.1 tells the client to assume. The server keeps serving.
    for token in &refused {
        assert!(server.is_active(&client, token).await);
    }
    for token in &revoked {
        assert!(!server.is_active(&client, token).await);
    }
    let bystanders_token = server
        .client_credentials_token(&bystander)
        .await
        .access_token;
    assert_eq!(
        revoke_over_http(&server, &bystander, &bystanders_token)
            .await
            .status(),
        200,
        "another client has its own allowance"
    );
    // Revoking a revoked token writes nothing, so it is never refused.
    for _ in 0..2 * LIMIT {
        assert_eq!(
            revoke_over_http(&server, &client, &revoked[0])
                .await
                .status(),
            200
        );
    }
    // gRPC callers get UNAVAILABLE with the OAuth code; a later second lets
    // the revocation through.
    let mut grpc = server.grpc().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match grpc.revoke(revoke_request(&client, &refused[0])).await {
            Ok(_) => break,
            Err(status) => assert_eq!(
                oauth_error(&status),
                (
                    tonic::Code::Unavailable,
                    "temporarily_unavailable".into(),
                    "The service is temporarily unavailable, try again later".into()
                )
            ),
        }
        assert!(std::time::Instant::now() < deadline, "never let through");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!server.is_active(&client, &refused[0]).await);
    grpc.issue_token(client_credentials_request(&client))
        .await
        .unwrap();
}

#[tokio::test]
async fn no_op_revocations_do_not_use_up_the_allowance() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--revocations-per-second", "2"]);
    let client = create_full_client(&db.url);
    let first = server.client_credentials_token(&client).await.access_token;
    let second = server.client_credentials_token(&client).await.access_token;
    let mut grpc = server.grpc().await;
    grpc.revoke(revoke_request(&client, &first)).await.unwrap();
    for _ in 0..5 {
        grpc.revoke(revoke_request(&client, &first)).await.unwrap();
        grpc.revoke(revoke_request(&client, "never-issued"))
            .await
            .unwrap();
    }
    // One write so far: whatever second this is, one more is within the bound.
    grpc.revoke(revoke_request(&client, &second)).await.unwrap();
    assert!(!server.is_active(&client, &second).await);
}

/// A sync larger than one page (512 rows) of one stamp, as a first load or a
/// bulk revocation gives, reads every row once, and skips expired ones.
#[tokio::test]
async fn a_sync_of_many_pages_reads_every_live_revocation() {
    let db = TestDb::new();
    let store = SeaStore::open(&db.url, 2, None).await.unwrap();
    store.sync_now().await.unwrap();
    let live: Vec<String> = (0..1300)
        .map(|_| oauthd::tokens::secret::new_id())
        .collect();
    let expired = oauthd::tokens::secret::new_id();
    // Written as a revoking transaction writes: bump, then stamp.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let txn = conn.begin().await.unwrap();
    let exec = |sql: String| txn.execute_raw(Statement::from_string(backend, sql));
    let stamp = "(SELECT version FROM state_version WHERE id = 5)";
    exec("UPDATE state_version SET version = version + 1 WHERE id = 5".into())
        .await
        .unwrap();
    let alive_until = unix_now() + 600;
    for chunk in live.chunks(400) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|jti| format!("('{jti}', {alive_until}, {stamp})"))
            .collect();
        exec(format!(
            "INSERT INTO revocations (jti, expires_at, seq) VALUES {}",
            rows.join(", ")
        ))
        .await
        .unwrap();
    }
    exec(format!(
        "INSERT INTO revocations (jti, expires_at, seq) VALUES ('{expired}', {}, {stamp})",
        unix_now() - 1
    ))
    .await
    .unwrap();
    txn.commit().await.unwrap();
    conn.close().await.unwrap();

    store.sync_now().await.unwrap();
    assert_eq!(store.revocations_held(), live.len());
    assert!(live.iter().all(|jti| store.is_revoked(jti)));
    assert!(!store.is_revoked(&expired));
    let fresh = SeaStore::open(&db.url, 2, None).await.unwrap();
    fresh.sync_now().await.unwrap();
    assert_eq!(fresh.revocations_held(), live.len(), "a first load alike");
}
