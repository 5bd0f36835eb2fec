//! SPEC §5: credentials issued before the prefixes "keep working until they
//! expire or are rotated". Rows are written straight into the database the way
//! the previous release wrote them (unprefixed 43-character values, stored as
//! their SHA-256), then the current binary serves them. And what it issues now
//! matches the regular expression README gives secret scanners.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oauthd::clock;
use oauthd::tokens::secret::{hash_secret, new_id, new_secret};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait as _;
use serde_json::Value;

const ISSUER: &str = "https://legacy.example";

/// README's expression for secret scanners, read from README itself so that a
/// change to the format that the README does not follow fails here.
fn readme_expression() -> regex::Regex {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let lines: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with(r"\b(oat|"))
        .collect();
    assert_eq!(lines.len(), 1, "README gives one expression: {lines:?}");
    regex::Regex::new(lines[0]).unwrap()
}

/// Whether the expression finds exactly `value`, whole, inside some text.
fn scanner_finds(expression: &regex::Regex, value: &str) -> bool {
    let text = format!("Authorization: Bearer {value}\n");
    expression
        .find_iter(&text)
        .map(|found| found.as_str())
        .eq([value])
}

/// Values as the previous release minted them.
struct LegacyValues {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    access_token: String,
}

/// Writes a confidential client, a refresh token of a password-grant login and
/// an opaque access token, with the columns `store/clients.rs` and
/// `store/tokens.rs` write, values from `new_secret` (what every credential was
/// before the prefixes). The database is migrated; the user exists already.
async fn write_previous_release_rows(url: &str, user: &Value) -> LegacyValues {
    let values = LegacyValues {
        client_id: new_id(),
        client_secret: new_secret(),
        refresh_token: new_secret(),
        access_token: new_secret(),
    };
    let user_id = user["id"].as_str().unwrap();
    let username = user["username"].as_str().unwrap();
    let now = clock::now();
    let statements = [
        format!(
            "INSERT INTO clients (client_id, name, secret_hash, grant_types, scopes, \
             access_token_ttl, enabled, created_at) VALUES ('{}', 'legacy', '{}', \
             'client_credentials password refresh_token', 'read write', NULL, TRUE, {now})",
            values.client_id,
            hash_secret(&values.client_secret),
        ),
        format!(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, username, \
             scope, grant_scope, issued_at, expires_at, used_at, revoked, access_jti, \
             access_expires_at, parent_hash) VALUES ('{}', '{}', '{}', '{user_id}', \
             '{username}', 'read write', 'read write', {now}, {}, NULL, FALSE, '{}', {}, NULL)",
            hash_secret(&values.refresh_token),
            new_id(),
            values.client_id,
            now + 86_400,
            new_id(),
            now + 3600,
        ),
        format!(
            "INSERT INTO access_tokens (token_hash, jti, client_id, user_id, username, scope, \
             issuer, audience, issued_at, expires_at) VALUES ('{}', '{}', '{}', '{user_id}', \
             '{username}', 'read', '{ISSUER}', '{ISSUER}', {now}, {})",
            hash_secret(&values.access_token),
            new_id(),
            values.client_id,
            now + 3600,
        ),
    ];
    let db = sea_orm::Database::connect(url).await.unwrap();
    for statement in &statements {
        db.execute_unprepared(statement).await.unwrap();
    }
    db.close().await.unwrap();
    values
}

async fn post(
    server: &Server,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(server.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A migrated database with user `henry`, and a server issuing opaque tokens
/// that is started only then, as after an upgrade.
fn setup() -> (TestDb, Value) {
    let db = TestDb::new();
    let migrated = cli_output(&db.url, &["migrate"], None);
    assert!(migrated.status.success());
    let user = create_user(&db.url, "henry", "pw-123456", &[]);
    (db, user)
}

fn start(db: &TestDb) -> Server {
    Server::start_with(db, &["--token-format", "opaque", "--issuer", ISSUER])
}

#[tokio::test]
async fn credentials_written_by_the_previous_release_keep_working() {
    let (db, user) = setup();
    let legacy = write_previous_release_rows(&db.url, &user).await;
    let server = start(&db);
    let expression = readme_expression();
    let basic = Some((legacy.client_id.as_str(), legacy.client_secret.as_str()));

    // The unprefixed client secret authenticates, in the body and with Basic.
    let (status, body) = post(
        &server,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &legacy.client_id),
            ("client_secret", &legacy.client_secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let issued = body["access_token"].as_str().unwrap();
    assert!(issued.starts_with("oat_"), "{issued}");
    assert!(scanner_finds(&expression, issued), "{issued}");

    // The unprefixed opaque access token introspects active, with its owner.
    let (status, body) = post(
        &server,
        "/oauth/introspect",
        basic,
        &[("token", &legacy.access_token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], legacy.client_id.as_str());
    assert_eq!(body["username"], "henry");
    assert_eq!(body["scope"], "read");

    // The unprefixed refresh token refreshes, and what replaces it is prefixed.
    let (status, body) = post(
        &server,
        "/oauth/token",
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &legacy.refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read write");
    let successor = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(successor.starts_with("ort_"), "{successor}");
    assert!(scanner_finds(&expression, &successor), "{successor}");
    assert!(scanner_finds(&expression, &access), "{access}");
    let (status, body) = post(&server, "/oauth/introspect", basic, &[("token", &access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["username"], "henry");

    // Single use holds for it as for any refresh token: presented again, it is
    // a replay, which revokes its family, the prefixed successor included.
    let (status, body) = post(
        &server,
        "/oauth/token",
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &legacy.refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "Refresh token has already been used"
    );
    let (_, body) = post(
        &server,
        "/oauth/introspect",
        basic,
        &[("token", &successor)],
    )
    .await;
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn legacy_tokens_introspect_narrow_and_revoke() {
    let (db, user) = setup();
    let legacy = write_previous_release_rows(&db.url, &user).await;
    let server = start(&db);
    let basic = Some((legacy.client_id.as_str(), legacy.client_secret.as_str()));

    // A legacy refresh token introspects as one, with or without the hint.
    for hint in [Some("refresh_token"), None] {
        let mut form = vec![("token", legacy.refresh_token.as_str())];
        form.extend(hint.map(|hint| ("token_type_hint", hint)));
        let (status, body) = post(&server, "/oauth/introspect", basic, &form).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["token_type"], "refresh_token");
    }

    // Narrowing the scope takes the checked refresh path; it works too.
    let (status, body) = post(
        &server,
        "/oauth/token",
        basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &legacy.refresh_token),
            ("scope", "read"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "read");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("ort_"));

    // A legacy opaque access token can be revoked, and then is inactive.
    let (status, _) = post(
        &server,
        "/oauth/revoke",
        basic,
        &[("token", &legacy.access_token)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = post(
        &server,
        "/oauth/introspect",
        basic,
        &[("token", &legacy.access_token)],
    )
    .await;
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn an_unprefixed_client_secret_works_until_rotated() {
    let (db, user) = setup();
    let legacy = write_previous_release_rows(&db.url, &user).await;
    let server = start(&db);
    let grant = |id: String, secret: String| {
        let server = &server;
        async move {
            post(
                server,
                "/oauth/token",
                Some((&id, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .0
        }
    };
    assert_eq!(
        grant(legacy.client_id.clone(), legacy.client_secret.clone()).await,
        StatusCode::OK
    );

    let rotated = cli(&db.url, &["client", "rotate-secret", &legacy.client_id]);
    let secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ocs_"), "{secret}");
    assert!(scanner_finds(&readme_expression(), &secret), "{secret}");
    let refused = || grant(legacy.client_id.clone(), legacy.client_secret.clone());
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            refused().await == StatusCode::UNAUTHORIZED
        })
        .await,
        "the old secret stops working once the server reloads"
    );
    assert_eq!(
        grant(legacy.client_id.clone(), secret).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn what_is_issued_now_matches_the_readme_expression() {
    let (db, _) = setup();
    let server = start(&db);
    let expression = readme_expression();
    let client = create_full_client(&db.url);
    let secret = client.secret.clone().unwrap();
    assert!(secret.starts_with("ocs_"), "{secret}");
    assert!(scanner_finds(&expression, &secret), "{secret}");

    let mut grpc = server.grpc().await;
    let login = grpc
        .issue_token(password_request(&client, "henry", "pw-123456"))
        .await
        .unwrap()
        .into_inner();
    let refresh = login.refresh_token.unwrap();
    assert!(login.access_token.starts_with("oat_"));
    assert!(refresh.starts_with("ort_"));
    for value in [&login.access_token, &refresh] {
        assert!(scanner_finds(&expression, value), "{value}");
    }
    let refreshed = grpc
        .refresh_token(oauthd::grpc::pb::RefreshTokenRequest {
            client: client.credentials(),
            refresh_token: refresh,
            scope: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(scanner_finds(&expression, &refreshed.access_token));
    assert!(scanner_finds(
        &expression,
        refreshed.refresh_token.as_deref().unwrap()
    ));

    // What the expression must not find: legacy values, and a credential run
    // into other word characters.
    assert!(!expression.is_match(&new_secret()));
    assert!(!expression.is_match(&format!("x{secret}")));
    assert!(!expression.is_match(&format!("{secret}0")));
}
