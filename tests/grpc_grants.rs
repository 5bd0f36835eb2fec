//! Every grant through the generated tonic client, and the scope rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::codes::*;
use common::*;
use oauthd::grpc::pb;

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn jwt_header(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn client_credentials_issues_an_rfc9068_jwt_without_refresh_token() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let token = server.client_credentials_token(&client).await;
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);
    assert_eq!(token.refresh_token, None);
    // Omitted scope means every scope the client may have.
    assert_eq!(token.scope, "read write");

    let header = jwt_header(&token.access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let claims = jwt_claims(&token.access_token);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(!claims[claim].is_null(), "missing {claim}");
    }
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["iss"], "http://localhost:3030");
}

#[tokio::test]
async fn password_grant_accepts_username_email_or_phone_and_returns_a_refresh_token() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let user = create_user(
        &db.url,
        "dana",
        "s3cret-pass",
        &["--email", "dana@example.com", "--phone", "+15550100"],
    );
    let mut grpc = server.grpc().await;
    for login in ["dana", "dana@example.com", "+15550100"] {
        let token = grpc
            .issue_token(password_request(&client, login, "s3cret-pass"))
            .await
            .unwrap()
            .into_inner();
        assert!(token.refresh_token.is_some());
        let claims = jwt_claims(&token.access_token);
        assert_eq!(claims["sub"], user["id"]);
        assert_eq!(claims["username"], "dana");
    }
}

#[tokio::test]
async fn password_grant_gives_no_refresh_token_unless_the_client_may_refresh() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_client(&db.url, &["--grant-types", "password"]);
    create_user(&db.url, "erin", "pw-123456", &[]);
    let token = server
        .grpc()
        .await
        .issue_token(password_request(&client, "erin", "pw-123456"))
        .await
        .unwrap();
    assert_eq!(token.into_inner().refresh_token, None);
}

#[tokio::test]
async fn refresh_works_through_both_rpcs_and_may_narrow_but_never_widen() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "frank", "pw-123456", &[]);
    let mut grpc = server.grpc().await;
    let mut request = password_request(&client, "frank", "pw-123456");
    request.scope = Some("read write".into());
    let first = grpc.issue_token(request).await.unwrap().into_inner();

    // Narrow through IssueToken.
    let narrowed = grpc
        .issue_token(pb::IssueTokenRequest {
            client: client.credentials(),
            grant_type: "refresh_token".into(),
            refresh_token: first.refresh_token.clone(),
            scope: Some("read".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(narrowed.scope, "read");

    // Widening beyond the original grant is refused.
    let status = grpc
        .refresh_token(pb::RefreshTokenRequest {
            client: client.credentials(),
            refresh_token: narrowed.refresh_token.clone().unwrap(),
            scope: Some("read write admin".into()),
        })
        .await
        .unwrap_err();
    let (_, reason, description) = oauth_error(&status);
    assert_eq!(reason, "invalid_scope");
    assert!(description.contains("admin"));

    // Omitting the scope on refresh gives back the whole original grant.
    let again = grpc
        .refresh_token(pb::RefreshTokenRequest {
            client: client.credentials(),
            refresh_token: narrowed.refresh_token.unwrap(),
            scope: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.scope, "read write");
}

#[tokio::test]
async fn requested_scopes_must_be_a_subset_and_the_client_ttl_applies() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_client(
        &db.url,
        &["--scopes", "read write", "--access-token-ttl", "120"],
    );
    let mut request = client_credentials_request(&client);
    request.scope = Some("write".into());
    let token = server
        .grpc()
        .await
        .issue_token(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(token.scope, "write");
    assert_eq!(token.expires_in, 120);
}

#[tokio::test]
async fn public_clients_authenticate_with_their_id_alone() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_client(
        &db.url,
        &["--public", "--grant-types", "password,refresh_token"],
    );
    assert!(client.secret.is_none());
    create_user(&db.url, "gina", "pw-123456", &[]);
    let token = server
        .grpc()
        .await
        .issue_token(password_request(&client, "gina", "pw-123456"))
        .await
        .unwrap();
    assert!(token.into_inner().refresh_token.is_some());
}

#[tokio::test]
async fn every_signing_algorithm_and_the_opaque_format_issue_introspectable_tokens() {
    for args in [
        &["--signing-alg", "EdDSA"][..],
        &["--signing-alg", "RS256"],
        &["--signing-alg", "HS256"],
        &["--token-format", "opaque"],
    ] {
        let db = TestDb::new();
        let server = Server::start_with(&db, args);
        let client = create_full_client(&db.url);
        let mut grpc = server.grpc().await;
        let token = grpc
            .issue_token(client_credentials_request(&client))
            .await
            .unwrap()
            .into_inner();
        if args[0] == "--signing-alg" {
            assert_eq!(jwt_header(&token.access_token)["alg"], args[1]);
        } else {
            assert!(!token.access_token.contains('.'));
            assert!(token.access_token.len() >= 43);
        }
        let answer = grpc
            .introspect(introspect_request(&client, &token.access_token))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.active, "{args:?}");
        assert_eq!(answer.client_id.as_deref(), Some(client.id.as_str()));
    }
}

fn redeem(client: &TestClient, code: &str, verifier: Option<&str>) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        client: client.credentials(),
        grant_type: "authorization_code".into(),
        code: Some(code.into()),
        redirect_uri: Some(CODE_REDIRECT_URI.into()),
        code_verifier: verifier.map(str::to_owned),
        ..Default::default()
    }
}

#[tokio::test]
async fn authorization_code_is_redeemed_over_grpc_once_with_its_verifier() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_client(&db.url, &CODE_CLIENT_ARGS);
    let user = create_user(&db.url, "dana", "s3cret-pass", &[]);
    let mut grpc = server.grpc().await;

    // A wrong verifier is INVALID_ARGUMENT / invalid_grant, and spends nothing.
    let cookie = session_cookie(&server, &client, "dana", "s3cret-pass").await;
    let code = mint_code(&server, &client, &cookie).await;
    let wrong = grpc
        .issue_token(redeem(&client, &code, Some(&"x".repeat(43))))
        .await
        .unwrap_err();
    let (status, error, description) = oauth_error(&wrong);
    assert_eq!(status, tonic::Code::InvalidArgument);
    assert_eq!(error, "invalid_grant");
    assert!(description.contains("code_verifier"), "{description}");

    let issued = grpc
        .issue_token(redeem(&client, &code, Some(VERIFIER)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.scope, "read write");
    assert!(issued.refresh_token.is_some());
    let claims = jwt_claims(&issued.access_token);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["username"], "dana");

    // The same code again: refused, and what it issued is revoked.
    let replay = grpc
        .issue_token(redeem(&client, &code, Some(VERIFIER)))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&replay).1, "invalid_grant");
    let inactive = eventually(std::time::Duration::from_secs(3), || async {
        !server.is_active(&client, &issued.access_token).await
    })
    .await;
    assert!(inactive, "the replayed code's access token is still active");
}

/// Each code's row on PostgreSQL, by hash: the heap page it lies on, and
/// whether it is redeemed.
async fn code_rows(url: &str) -> Vec<(String, i64, bool)> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let conn = sea_orm::Database::connect(url).await.unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT code_hash, (ctid::text::point)[0]::bigint AS page, used_at IS NOT NULL AS used \
             FROM authorization_codes ORDER BY code_hash",
        ))
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "code_hash").unwrap(),
                row.try_get("", "page").unwrap(),
                row.try_get("", "used").unwrap(),
            )
        })
        .collect()
}

/// On PostgreSQL the update that redeems a code stays on the code's page
/// (migration `m20261204_000001`), so no index is written for it. At the
/// default fill the first page holds about 29 codes and no room for one of
/// them redeemed: the first redemption there would move.
#[tokio::test]
async fn on_postgres_a_redeemed_code_stays_on_its_page() {
    let db = TestDb::postgres_required();
    let server = Server::start(&db);
    let client = create_client(&db.url, &CODE_CLIENT_ARGS);
    create_user(&db.url, "dana", "s3cret-pass", &[]);
    let cookie = session_cookie(&server, &client, "dana", "s3cret-pass").await;
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(mint_code(&server, &client, &cookie).await);
    }
    let minted = code_rows(&db.url).await;
    assert_eq!(minted.len(), 40);
    let mut grpc = server.grpc().await;
    for code in &codes {
        grpc.issue_token(redeem(&client, code, Some(VERIFIER)))
            .await
            .unwrap();
    }
    let redeemed = code_rows(&db.url).await;
    assert!(redeemed.iter().all(|(_, _, used)| *used), "{redeemed:?}");
    let pages = |rows: &[(String, i64, bool)]| {
        rows.iter()
            .map(|(hash, page, _)| (hash.clone(), *page))
            .collect::<Vec<_>>()
    };
    assert_eq!(pages(&redeemed), pages(&minted), "a redeemed code moved");
}
