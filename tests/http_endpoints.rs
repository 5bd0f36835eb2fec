//! Introspection, revocation, discovery, JWKS, probes and metrics over HTTP;
//! tokens crossing between HTTP and gRPC; and a log that never holds a secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};

async fn form(
    server: &Server,
    path: &str,
    client: &TestClient,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn introspection_and_revocation_over_http() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let resource_server = create_client(&db.url, &[]);
    create_user(&db.url, "dora", "pw-123456", &[]);
    let (_, token) = form(
        &server,
        "/oauth/token",
        &client,
        &[
            ("grant_type", "password"),
            ("username", "dora"),
            ("password", "pw-123456"),
        ],
    )
    .await;
    let access = token["access_token"].as_str().unwrap();
    let refresh = token["refresh_token"].as_str().unwrap();

    let (status, active) = form(
        &server,
        "/oauth/introspect",
        &resource_server,
        &[("token", access)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    assert_eq!(active["username"], "dora");
    assert_eq!(active["client_id"], client.id.as_str());
    for member in [
        "scope",
        "token_type",
        "exp",
        "iat",
        "nbf",
        "sub",
        "aud",
        "iss",
        "jti",
    ] {
        assert!(!active[member].is_null(), "missing {member}");
    }
    assert!(active["exp"].is_i64());

    let (status, _) = form(
        &server,
        "/oauth/revoke",
        &client,
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, inactive) = form(
        &server,
        "/oauth/introspect",
        &resource_server,
        &[("token", access)],
    )
    .await;
    assert_eq!(inactive, json!({"active": false}));
    let (status, _) = form(
        &server,
        "/oauth/revoke",
        &client,
        &[("token", "never-issued")],
    )
    .await;
    assert_eq!(status, 200);

    let (status, missing) = form(&server, "/oauth/introspect", &resource_server, &[]).await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let stranger = TestClient {
        id: resource_server.id.clone(),
        secret: Some("wrong".into()),
    };
    let (status, refused) = form(
        &server,
        "/oauth/introspect",
        &stranger,
        &[("token", access)],
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn tokens_cross_between_http_and_grpc() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let (_, over_http) = form(
        &server,
        "/oauth/token",
        &client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let mut grpc = server.grpc().await;
    let answer = grpc
        .introspect(introspect_request(
            &client,
            over_http["access_token"].as_str().unwrap(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);

    let over_grpc = grpc
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap()
        .into_inner();
    let (_, answer) = form(
        &server,
        "/oauth/introspect",
        &client,
        &[("token", &over_grpc.access_token)],
    )
    .await;
    assert_eq!(answer["active"], true);
}

#[tokio::test]
async fn discovery_names_endpoints_that_answer() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--issuer", "http://127.0.0.1:1"]);
    create_full_client(&db.url);
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], "http://127.0.0.1:1");
    assert_eq!(
        metadata["grant_types_supported"],
        json!([
            "client_credentials",
            "password",
            "refresh_token",
            "authorization_code",
            "implicit"
        ])
    );
    // SPEC §4 and §7: the browser flows' members.
    assert_eq!(
        metadata["response_types_supported"],
        json!(["code", "token"])
    );
    assert_eq!(
        metadata["response_modes_supported"],
        json!(["query", "fragment"])
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic"))
    );
    let scopes_known = eventually(std::time::Duration::from_secs(1), || async {
        let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        metadata["scopes_supported"] == json!(["read", "write"])
    })
    .await;
    assert!(scopes_known);
    for (member, method) in [
        ("authorization_endpoint", "GET"),
        ("token_endpoint", "POST"),
        ("introspection_endpoint", "POST"),
        ("revocation_endpoint", "POST"),
        ("jwks_uri", "GET"),
    ] {
        // The issuer is a placeholder; the paths must exist on this server.
        let path = metadata[member]
            .as_str()
            .unwrap()
            .trim_start_matches("http://127.0.0.1:1");
        let request = reqwest::Client::new().request(method.parse().unwrap(), server.url(path));
        let status = request
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(
            status != 404 && status != 405,
            "{member} {path} answered {status}"
        );
    }
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_a_short_cache_lifetime() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let response = reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap();
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "no private part");

    // A resource server can verify a token with nothing but the JWKS.
    let (_, token) = form(
        &server,
        "/oauth/token",
        &client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let access = token["access_token"].as_str().unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["http://localhost:3030"]);
    validation.set_issuer(&["http://localhost:3030"]);
    let decoded = jsonwebtoken::decode::<Value>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(decoded.claims["client_id"], client.id.as_str());
}

#[tokio::test]
async fn probes_and_metrics_answer() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    form(
        &server,
        "/oauth/token",
        &client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        200
    );
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("oauthd_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("grant_type=\"client_credentials\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("oauthd_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("oauthd_db_pool_connections"), "{metrics}");
}

#[tokio::test]
async fn the_log_of_a_whole_session_holds_no_secret_password_or_token() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let password = "Sup3r-Secret-Passw0rd";
    create_user(&db.url, "eve", password, &[]);
    let secret = client.secret.clone().unwrap();
    let mut seen = vec![secret.clone(), password.to_owned()];

    let (_, login) = form(
        &server,
        "/oauth/token",
        &client,
        &[
            ("grant_type", "password"),
            ("username", "eve"),
            ("password", password),
        ],
    )
    .await;
    let (_, refreshed) = form(
        &server,
        "/oauth/token",
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", login["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    form(
        &server,
        "/oauth/token",
        &client,
        &[
            ("grant_type", "password"),
            ("username", "eve"),
            ("password", "wrong-guess-123"),
        ],
    )
    .await;
    let wrong = TestClient {
        id: client.id.clone(),
        secret: Some("not-the-secret-xyz".into()),
    };
    form(
        &server,
        "/oauth/token",
        &wrong,
        &[("grant_type", "client_credentials")],
    )
    .await;
    // Replaying a used refresh token exercises the error paths too.
    form(
        &server,
        "/oauth/token",
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", login["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    form(
        &server,
        "/oauth/introspect",
        &client,
        &[("token", refreshed["access_token"].as_str().unwrap())],
    )
    .await;
    form(
        &server,
        "/oauth/revoke",
        &client,
        &[("token", refreshed["refresh_token"].as_str().unwrap())],
    )
    .await;
    let mut grpc = server.grpc().await;
    let over_grpc = grpc
        .issue_token(password_request(&client, "eve", password))
        .await
        .unwrap()
        .into_inner();
    let _ = grpc
        .issue_token(password_request(&client, "eve", "another-wrong-guess"))
        .await;

    for token in [&login, &refreshed] {
        seen.push(token["access_token"].as_str().unwrap().to_owned());
        seen.push(token["refresh_token"].as_str().unwrap().to_owned());
    }
    seen.push(over_grpc.access_token);
    seen.push("wrong-guess-123".into());
    seen.push("not-the-secret-xyz".into());
    seen.push("another-wrong-guess".into());

    let log = server.log();
    assert!(log.contains("request"), "the session was logged:\n{log}");
    assert!(log.contains(&client.id), "client ids are logged");
    for value in seen {
        assert!(!log.contains(&value), "the log holds a secret: {value}");
    }
}
