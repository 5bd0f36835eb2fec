//! `/oauth/check` (SPEC §9) against the real binary: every carrier, every row
//! of the table, any method, Traefik's headers, and input meant to hurt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

const BARE_CHALLENGE: &str = r#"Bearer realm="oauthd""#;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token(server: &Server, client: &TestClient) -> String {
    server.client_credentials_token(client).await.access_token
}

/// What a check answered: status, challenge, identity headers, JSON body.
struct Answer {
    status: u16,
    challenge: Option<String>,
    identity: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    async fn of(response: Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-store", "status {status}");
        let identity = IDENTITY_HEADERS
            .iter()
            .map(|name| {
                let value = headers
                    .get(*name)
                    .unwrap_or_else(|| panic!("{name} missing at status {status}"));
                ((*name).to_owned(), value.to_str().unwrap().to_owned())
            })
            .collect();
        let challenge = headers
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap();
        Self {
            status,
            challenge,
            identity,
            body,
        }
    }

    fn header(&self, name: &str) -> &str {
        &self.identity.iter().find(|(n, _)| n == name).unwrap().1
    }
}

/// A server with a client of `scopes`, one of its tokens, and the check URL.
struct Setup {
    db: TestDb,
    server: Server,
    client: TestClient,
    jwt: String,
    check: String,
}

async fn setup(scopes: &str) -> Setup {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_client(&db.url, &["--scopes", scopes]);
    let jwt = token(&server, &client).await;
    let check = server.url("/oauth/check");
    Setup {
        db,
        server,
        client,
        jwt,
        check,
    }
}

async fn send(request: RequestBuilder) -> Answer {
    Answer::of(request.send().await.unwrap()).await
}

#[tokio::test]
async fn every_carrier_of_the_spec_is_read() {
    let Setup {
        db: _db,
        server: _server,
        client,
        jwt,
        check,
    } = setup("read write").await;
    let http = http();
    let carriers: Vec<(&str, RequestBuilder)> = vec![
        (
            "Bearer",
            http.get(&check)
                .header("authorization", format!("Bearer {jwt}")),
        ),
        (
            "bearer, lowercase",
            http.get(&check)
                .header("authorization", format!("bearer {jwt}")),
        ),
        (
            "BEARER, uppercase",
            http.get(&check)
                .header("authorization", format!("BEARER {jwt}")),
        ),
        (
            "access_token header",
            http.get(&check).header("access_token", &jwt),
        ),
        ("X-API-Key", http.get(&check).header("x-api-key", &jwt)),
        (
            "access_token in the check URL",
            http.get(format!("{check}?access_token={jwt}")),
        ),
        (
            "api_key in the check URL",
            http.get(format!("{check}?api_key={jwt}")),
        ),
        (
            "X-Forwarded-Uri",
            http.get(&check).header(
                "x-forwarded-uri",
                format!("/orders?page=2&access_token={jwt}"),
            ),
        ),
        (
            "X-Original-URI",
            http.get(&check)
                .header("x-original-uri", format!("/orders?api_key={jwt}#top")),
        ),
        (
            "X-Original-URL",
            http.get(&check).header(
                "x-original-url",
                format!("https://api.example.com/orders?access_token={jwt}"),
            ),
        ),
        (
            "form body",
            http.post(&check)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("access_token={jwt}&other=1")),
        ),
    ];
    for (carrier, request) in carriers {
        let answer = send(request).await;
        assert_eq!(answer.status, 200, "{carrier}: {}", answer.body);
        assert_eq!(answer.header("x-auth-subject"), client.id, "{carrier}");
        assert_eq!(answer.header("x-auth-client-id"), client.id, "{carrier}");
        assert_eq!(answer.header("x-auth-credential"), "access_token");
        assert_eq!(answer.header("x-auth-scope"), "read write");
        assert_eq!(answer.header("x-auth-username"), "");
        assert_eq!(
            answer.header("x-auth-expires"),
            answer.body["exp"].as_i64().unwrap().to_string()
        );
        assert_eq!(answer.body["active"], true);
        assert_eq!(answer.body["client_id"], client.id.as_str());
    }
    // A form body is read only when it says it is a form.
    let answer = send(
        http.post(&check)
            .header("content-type", "text/plain")
            .body(format!("access_token={jwt}")),
    )
    .await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn any_method_is_checked_and_traefiks_headers_are_understood() {
    let Setup {
        db: _db,
        server: _server,
        client,
        jwt,
        check,
    } = setup("read").await;
    let http = http();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = send(
            http.request(method.clone(), &check)
                .header("authorization", format!("Bearer {jwt}")),
        )
        .await;
        assert_eq!(answer.status, 200, "{method}");
    }
    let head = http
        .head(&check)
        .header("authorization", format!("Bearer {jwt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["x-auth-subject"], client.id.as_str());
    // Traefik's forwardAuth sends the original method and URI in these.
    let answer = send(
        http.get(format!("{check}?scope=read"))
            .header("x-forwarded-method", "DELETE")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "api.example.com")
            .header("x-forwarded-uri", format!("/v1/items/7?access_token={jwt}")),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-auth-client-id"), client.id);
}

#[tokio::test]
async fn each_row_of_the_table() {
    let Setup {
        db,
        server,
        client,
        jwt,
        check,
    } = setup("read write").await;
    let other = token(&server, &client).await;
    let http = http();
    let bearer = |value: &str| {
        http.get(format!("{check}?scope=read"))
            .header("authorization", format!("Bearer {value}"))
    };

    let valid = send(bearer(&jwt)).await;
    assert_eq!((valid.status, valid.challenge.as_deref()), (200, None));

    let bare = send(http.get(&check)).await;
    assert_eq!(bare.status, 401);
    assert_eq!(bare.challenge.as_deref(), Some(BARE_CHALLENGE));
    assert_eq!(bare.body, serde_json::json!({}));
    assert!(bare.identity.iter().all(|(_, value)| value.is_empty()));

    let malformed = send(bearer("not-a-token")).await;
    assert_eq!(malformed.status, 401);
    assert_eq!(
        malformed.challenge.as_deref(),
        Some(
            r#"Bearer realm="oauthd", error="invalid_token", error_description="The credential is malformed""#
        )
    );
    assert_eq!(malformed.body["error"], "invalid_token");
    assert_eq!(
        malformed.body["error_description"],
        "The credential is malformed"
    );

    let lacking = send(
        http.get(format!("{check}?scope=read+admin"))
            .header("authorization", format!("Bearer {jwt}")),
    )
    .await;
    assert_eq!(lacking.status, 403);
    assert_eq!(
        lacking.challenge.as_deref(),
        Some(r#"Bearer realm="oauthd", error="insufficient_scope", scope="admin read""#)
    );
    assert_eq!(lacking.body["error"], "insufficient_scope");
    assert!(lacking.identity.iter().all(|(_, value)| value.is_empty()));

    let two = send(bearer(&jwt).header("x-api-key", &other)).await;
    assert_eq!(two.status, 400);
    assert!(
        two.challenge
            .as_deref()
            .unwrap()
            .starts_with(r#"Bearer realm="oauthd", error="invalid_request", error_description=""#),
        "{:?}",
        two.challenge
    );
    assert_eq!(two.body["error"], "invalid_request");
    // The same value in two places counts once.
    let same = send(bearer(&jwt).header("access_token", &jwt)).await;
    assert_eq!(same.status, 200);

    // Revoked, then a disabled client: both invalid_token.
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", other.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let answer = send(bearer(&other)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "The credential has been revoked"
    );
    cli(&db.url, &["client", "disable", &client.id]);
    let answer = send(bearer(&jwt)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "The credential's client is disabled or deleted"
    );
}

#[tokio::test]
async fn an_expired_token_or_a_locked_users_token_is_an_invalid_token() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let short = create_client(&db.url, &["--access-token-ttl", "1"]);
    let expiring = token(&server, &short).await;
    let app = create_full_client(&db.url);
    create_user(&db.url, "uma", "pw-123456", &[]);
    let login = server
        .grpc()
        .await
        .issue_token(password_request(&app, "uma", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let check = server.url("/oauth/check");
    let http = http();
    let answer = send(
        http.get(&check)
            .header("authorization", format!("Bearer {}", login.access_token)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-auth-username"), "uma");
    assert_ne!(answer.header("x-auth-subject"), app.id);

    cli(&db.url, &["user", "lock", "uma"]);
    let answer = send(
        http.get(&check)
            .header("authorization", format!("Bearer {}", login.access_token)),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "The credential's user is locked"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = send(
        http.get(&check)
            .header("authorization", format!("Bearer {expiring}")),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "The credential has expired"
    );
}

#[tokio::test]
async fn a_refresh_token_is_never_a_credential_here() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let app = create_full_client(&db.url);
    create_user(&db.url, "rob", "pw-123456", &[]);
    let login = server
        .grpc()
        .await
        .issue_token(password_request(&app, "rob", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let refresh = login.refresh_token.unwrap();
    let answer = send(
        http()
            .get(server.url("/oauth/check"))
            .header("authorization", format!("Bearer {refresh}")),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "Only an access token or an API key is accepted here"
    );
}

#[tokio::test]
async fn an_opaque_token_is_checked_like_a_jwt() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--token-format", "opaque"]);
    let client = create_client(&db.url, &["--scopes", "read"]);
    let opaque = token(&server, &client).await;
    assert!(opaque.starts_with("oat_"));
    for _ in 0..3 {
        let answer = send(
            http()
                .get(server.url("/oauth/check?scope=read"))
                .header("authorization", format!("Bearer {opaque}")),
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-auth-client-id"), client.id);
    }
}

#[tokio::test]
async fn input_meant_to_hurt_gets_its_row_and_the_server_keeps_serving() {
    let Setup {
        db: _db,
        server,
        client,
        jwt,
        check,
    } = setup("read").await;
    let http = http();

    // 10,000 query parameters, the credential last: read, and in time.
    let mut query = "p=v&".repeat(10_000);
    query.push_str(&format!("access_token={jwt}"));
    let answer = send(
        http.get(&check)
            .header("x-original-uri", format!("/x?{query}")),
    )
    .await;
    assert_eq!(answer.status, 200);
    // ... and without one, a bare 401.
    let empty = "p=v&".repeat(10_000);
    let answer = send(http.get(format!("{check}?{}", &empty[..empty.len() - 1]))).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenge.as_deref(), Some(BARE_CHALLENGE));

    // Invalid percent-encoding in the original URI: elsewhere it is ignored,
    // in the credential it makes the credential malformed.
    let answer = send(
        http.get(&check)
            .header("x-forwarded-uri", format!("/x?q=%zz%&access_token={jwt}")),
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer = send(
        http.get(&check)
            .header("x-forwarded-uri", "/x?access_token=%E0%A4%A&p=%"),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_token");

    // An API key whose checksum is broken: refused as malformed.
    let key = format!("oak_{}", "A".repeat(49));
    let answer = send(http.get(&check).header("x-api-key", &key)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["error_description"],
        "The credential is malformed"
    );

    // A JWT with alg none and no signature, claiming to be anyone.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        serde_json::json!({
            "iss": "http://localhost:3030", "sub": "admin", "aud": "http://localhost:3030",
            "client_id": client.id, "scope": "read", "exp": 4_000_000_000u64,
            "iat": 1, "nbf": 1, "jti": "x"
        })
        .to_string(),
    );
    let forged = format!("{header}.{claims}.");
    let answer = send(
        http.get(&check)
            .header("authorization", format!("Bearer {forged}")),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_token");

    // A 100 KB header: a head over --http-max-header-bytes (64 KiB) is
    // refused with 431 before any handler runs, unless it arrived whole in
    // the read that crossed the limit (hyper checks the limit between reads),
    // and then the check finds the credential malformed. Never a 500.
    let huge = "A".repeat(100 * 1024);
    let response = http
        .get(&check)
        .header("authorization", format!("Bearer {huge}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        status == 431 || status == 401,
        "a 100 KB header got {status}"
    );

    // A Bearer with no token is a credential, and a malformed one.
    let answer = send(http.get(&check).header("authorization", "Bearer")).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_token");
    // Another scheme is for the upstream: no credential for us.
    let answer = send(
        http.get(&check)
            .header("authorization", "Basic dXNlcjpwdw=="),
    )
    .await;
    assert_eq!(answer.challenge.as_deref(), Some(BARE_CHALLENGE));

    // A scope requirement that breaks RFC 6749's syntax: the 400 row.
    let answer = send(
        http.get(format!("{check}?scope=re%22ad"))
            .header("authorization", format!("Bearer {jwt}")),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"], "invalid_request");
    // Header bytes that are not UTF-8, and a form body with broken escapes:
    // malformed credentials, never a 500.
    let answer = send(http.get(&check).header(
        "x-api-key",
        reqwest::header::HeaderValue::from_bytes(b"oak_\xff\xfe").unwrap(),
    ))
    .await;
    assert_eq!(
        answer.body["error_description"],
        "The credential is malformed"
    );
    let answer = send(
        http.post(&check)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("access_token=%zz%&x=%"),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_token");

    // Still serving.
    let answer = send(
        http.get(&check)
            .header("authorization", format!("Bearer {jwt}")),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(server.log().lines().all(|line| !line.contains(&jwt)));
}

#[tokio::test]
async fn checks_are_counted_by_outcome_and_credential_kind() {
    let Setup {
        db: _db,
        client: _client,
        server,
        jwt,
        check,
    } = setup("read").await;
    let http = http();
    send(
        http.get(&check)
            .header("authorization", format!("Bearer {jwt}")),
    )
    .await;
    send(http.get(&check)).await;
    send(
        http.get(format!("{check}?scope=admin"))
            .header("authorization", format!("Bearer {jwt}")),
    )
    .await;
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"oauthd_checks_total{transport="http",outcome="allowed",credential="jwt"} 1"#,
        r#"oauthd_checks_total{transport="http",outcome="no_credential",credential="none"} 1"#,
        r#"oauthd_checks_total{transport="http",outcome="insufficient_scope",credential="jwt"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
}

fn api_key(db: &TestDb, client: &TestClient, scopes: &str) -> String {
    let created = cli(
        &db.url,
        &[
            "apikey", "create", "--client", &client.id, "--scopes", scopes,
        ],
    );
    created["api_key"].as_str().unwrap().to_owned()
}

/// The database lookups of API keys a server has made, from its `/metrics`.
async fn key_lookups(server: &Server) -> u64 {
    let metrics = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("oauthd_store_lookups_total{") && line.contains(r#"kind="api_key""#)
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test]
async fn an_api_key_is_checked_in_every_carrier_and_from_memory_after_the_first_lookup() {
    let Setup {
        db,
        server,
        client,
        check,
        ..
    } = setup("read write").await;
    let key = api_key(&db, &client, "read");
    let http = http();
    let first = send(
        http.get(format!("{check}?scope=read"))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-auth-credential"), "api_key");
    assert_eq!(first.header("x-auth-subject"), client.id);
    assert_eq!(first.header("x-auth-client-id"), client.id);
    assert_eq!(first.header("x-auth-scope"), "read");
    assert_eq!(first.body["token_type"], "api_key");
    let lookups = key_lookups(&server).await;
    for request in [
        http.get(format!("{check}?api_key={key}")),
        http.get(&check)
            .header("authorization", format!("Bearer {key}")),
        http.get(&check)
            .header("x-original-uri", format!("/v1/orders?api_key={key}")),
    ] {
        assert_eq!(send(request).await.status, 200);
    }
    let lacking = send(
        http.get(format!("{check}?scope=write"))
            .header("x-api-key", &key),
    )
    .await;
    assert_eq!(lacking.status, 403);
    for _ in 0..1000 {
        let response = http
            .get(&check)
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        key_lookups(&server).await,
        lookups,
        "checks of a key already seen read the database"
    );
}

#[tokio::test]
async fn a_key_revoked_at_one_replica_is_refused_by_the_other_within_a_second() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = create_client(&db.url, &["--scopes", "read"]);
    let key = api_key(&db, &client, "read");
    let at_b = || async {
        http()
            .get(b.url("/oauth/check"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(at_b().await, 200, "replica B now remembers the key");
    // The key's own client revokes it at A (RFC 7009).
    let revoked = http()
        .post(a.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(
        eventually(Duration::from_secs(1), || async { at_b().await == 401 }).await,
        "replica B still accepts the key after a second"
    );
    let at_a = send(http().get(a.url("/oauth/check")).header("x-api-key", &key)).await;
    assert_eq!(
        at_a.body["error_description"],
        "The credential has been revoked"
    );
}
