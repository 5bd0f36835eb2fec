//! The HTTP token endpoint (SPEC §4): every error row with its status, code and
//! description; headers; aliases; parsing rules; and a standard OAuth client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn error(&self) -> (u16, &str, &str) {
        (
            self.status.as_u16(),
            self.body["error"].as_str().unwrap_or_default(),
            self.body["error_description"].as_str().unwrap_or_default(),
        )
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn post_form(url: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

struct Setup {
    db: TestDb,
    server: Server,
    client: TestClient,
}

impl Setup {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(args: &[&str]) -> Self {
        let db = TestDb::new();
        let server = Server::start_with(&db, args);
        let client = create_full_client(&db.url);
        Self { db, server, client }
    }

    fn token_url(&self) -> String {
        self.server.url("/oauth/token")
    }

    fn basic(&self) -> Option<(&str, &str)> {
        Some((&self.client.id, self.client.secret.as_deref().unwrap()))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Answer {
        post_form(&self.token_url(), self.basic(), form).await
    }
}

#[tokio::test]
async fn client_credentials_succeeds_with_the_spec_headers_on_every_alias() {
    let s = Setup::new();
    for path in ["/oauth/token", "/oauth2/token", "/api/v1/oauth2/token"] {
        let a = post_form(
            &s.server.url(path),
            s.basic(),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
        assert_eq!(a.header("pragma"), Some("no-cache"));
        assert_eq!(a.body["token_type"], "Bearer");
        assert!(a.body["expires_in"].is_i64());
        assert_eq!(a.body["scope"], "read write");
        assert!(a.body.get("refresh_token").is_none());
    }
}

#[tokio::test]
async fn credentials_in_the_body_work_and_both_methods_at_once_are_refused() {
    let s = Setup::new();
    let secret = s.client.secret.as_deref().unwrap();
    let body_form = [
        ("grant_type", "client_credentials"),
        ("client_id", &s.client.id),
        ("client_secret", secret),
    ];
    let a = post_form(&s.token_url(), None, &body_form).await;
    assert_eq!(a.status, 200);
    let both = post_form(&s.token_url(), s.basic(), &body_form).await;
    assert_eq!(both.error().0, 400);
    assert_eq!(both.error().1, "invalid_request");
    assert!(both.error().2.contains("client_id"), "{}", both.error().2);
}

#[tokio::test]
async fn basic_credentials_are_url_decoded_per_rfc6749() {
    let s = Setup::new();
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64. Secrets use
    // the URL-safe alphabet, so encoding changes nothing, and "%2D" decodes to "-".
    let secret = s.client.secret.as_deref().unwrap().replace('-', "%2D");
    let header =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", s.client.id));
    let request = reqwest::Client::new()
        .post(s.token_url())
        .header("authorization", format!("Basic {header}"))
        .form(&[("grant_type", "client_credentials")]);
    assert_eq!(answer(request).await.status, 200);
}

#[tokio::test]
async fn missing_and_repeated_parameters_are_invalid_request_naming_them() {
    let s = Setup::new();
    let a = s.token(&[("scope", "read")]).await;
    assert_eq!(a.error().0, 400);
    assert_eq!(a.error().1, "invalid_request");
    assert!(a.error().2.contains("grant_type"));
    let a = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("scope", "write"),
        ])
        .await;
    assert_eq!((a.error().0, a.error().1), (400, "invalid_request"));
    assert!(a.error().2.contains("scope"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.header("pragma"), Some("no-cache"));
}

#[tokio::test]
async fn password_grant_rows_of_the_error_table() {
    let s = Setup::new();
    create_user(
        &s.db.url,
        "alice",
        "pw-123456",
        &["--email", "alice@example.com"],
    );
    for (user, command) in [
        ("locked", "lock"),
        ("disabled", "disable"),
        ("expired", "expire-password"),
    ] {
        create_user(&s.db.url, user, "pw-123456", &[]);
        cli(&s.db.url, &["user", command, user]);
    }
    type Case<'a> = (&'a [(&'a str, &'a str)], (u16, &'a str, &'a str));
    let cases: [Case; 6] = [
        (
            &[("grant_type", "password"), ("password", "pw-123456")],
            (
                400,
                "invalid_request",
                "An authorization username must be supplied.",
            ),
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
            (400, "invalid_grant", "Bad credentials"),
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "mallory"),
                ("password", "pw-123456"),
            ],
            (400, "invalid_grant", "Bad credentials"),
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "locked"),
                ("password", "pw-123456"),
            ],
            (400, "invalid_grant", "User is locked"),
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "disabled"),
                ("password", "pw-123456"),
            ],
            (400, "invalid_grant", "User is disabled"),
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "expired"),
                ("password", "pw-123456"),
            ],
            (400, "invalid_grant", "Password has expired"),
        ),
    ];
    for (form, expected) in cases {
        assert_eq!(s.token(form).await.error(), expected, "{form:?}");
    }
    let ok = s
        .token(&[
            ("grant_type", "password"),
            ("username", "alice@example.com"),
            ("password", "pw-123456"),
        ])
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.body["refresh_token"].is_string());
}

#[tokio::test]
async fn bad_client_credentials_are_401_with_a_challenge_only_after_basic() {
    let s = Setup::new();
    let form = [("grant_type", "client_credentials")];
    let wrong = post_form(&s.token_url(), Some((&s.client.id, "wrong")), &form).await;
    assert_eq!(
        wrong.error(),
        (401, "invalid_client", "Bad client credentials")
    );
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"oauthd\"")
    );

    let unknown = post_form(
        &s.token_url(),
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
        ],
    )
    .await;
    assert_eq!(
        unknown.error(),
        (401, "invalid_client", "Bad client credentials")
    );
    assert_eq!(unknown.header("www-authenticate"), None);

    let garbled = answer(
        reqwest::Client::new()
            .post(s.token_url())
            .header("authorization", "Basic !!!not-base64")
            .form(&form),
    )
    .await;
    assert_eq!(
        garbled.error(),
        (401, "invalid_client", "Bad client credentials")
    );
    let no_colon = base64::engine::general_purpose::STANDARD.encode("just-an-id");
    let no_colon = answer(
        reqwest::Client::new()
            .post(s.token_url())
            .header("authorization", format!("Basic {no_colon}"))
            .form(&form),
    )
    .await;
    assert_eq!(
        no_colon.error(),
        (401, "invalid_client", "Bad client credentials")
    );

    cli(&s.db.url, &["client", "disable", &s.client.id]);
    let refused = eventually(std::time::Duration::from_secs(2), || async {
        s.token(&form).await.status == 401
    })
    .await;
    assert!(refused);
    assert_eq!(
        s.token(&form).await.error(),
        (401, "invalid_client", "Bad client credentials")
    );
}

#[tokio::test]
async fn grant_scope_and_type_rows_of_the_error_table() {
    let s = Setup::new();
    let cc_only = create_client(&s.db.url, &[]);
    let a = post_form(
        &s.token_url(),
        Some((&cc_only.id, cc_only.secret.as_deref().unwrap())),
        &[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ],
    )
    .await;
    assert_eq!((a.error().0, a.error().1), (400, "unauthorized_client"));
    assert!(a.error().2.contains("password"));

    let a = s
        .token(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")])
        .await;
    assert_eq!((a.error().0, a.error().1), (400, "unsupported_grant_type"));
    assert!(a.error().2.contains("device_code"));

    let a = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("scope", "read delete"),
        ])
        .await;
    assert_eq!((a.error().0, a.error().1), (400, "invalid_scope"));
    assert!(a.error().2.contains("delete"));
}

#[tokio::test]
async fn refresh_rows_of_the_error_table() {
    let s = Setup::new();
    create_user(&s.db.url, "bob", "pw-123456", &[]);
    let login = s
        .token(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "pw-123456"),
            ("scope", "read"),
        ])
        .await;
    let refresh_token = login.body["refresh_token"].as_str().unwrap().to_owned();

    let wider = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("scope", "read write"),
        ])
        .await;
    assert_eq!((wider.error().0, wider.error().1), (400, "invalid_scope"));
    assert!(wider.error().2.contains("write"));

    let unknown = s
        .token(&[("grant_type", "refresh_token"), ("refresh_token", "bogus")])
        .await;
    assert_eq!(
        unknown.error(),
        (400, "invalid_grant", "Refresh token is invalid")
    );

    let rotated = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(rotated.status, 200);
    assert_eq!(rotated.body["scope"], "read");
    assert!(rotated.body["refresh_token"].is_string());
    let reused = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(
        reused.error(),
        (400, "invalid_grant", "Refresh token has already been used")
    );
}

#[tokio::test]
async fn a_database_outage_is_503_temporarily_unavailable() {
    let db = TestDb::sqlite();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let basic = Some((client.id.as_str(), client.secret.as_deref().unwrap()));
    let path = db.sqlite_path.clone().unwrap();
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside).unwrap();
    let down = eventually(std::time::Duration::from_secs(3), || async {
        post_form(
            &server.url("/oauth/token"),
            basic,
            &[("grant_type", "client_credentials")],
        )
        .await
        .status
            == 503
    })
    .await;
    assert!(down);
    let a = post_form(
        &server.url("/oauth/token"),
        basic,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!((a.error().0, a.error().1), (503, "temporarily_unavailable"));
    std::fs::rename(&aside, &path).unwrap();
    let up = eventually(std::time::Duration::from_secs(3), || async {
        post_form(
            &server.url("/oauth/token"),
            basic,
            &[("grant_type", "client_credentials")],
        )
        .await
        .status
            == 200
    })
    .await;
    assert!(up);
}

#[tokio::test]
async fn malformed_bodies_get_400_and_the_server_keeps_serving() {
    let s = Setup::new();
    let url = s.token_url();
    let raw = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = reqwest::Client::new().post(url.clone()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request
    };
    let form = Some("application/x-www-form-urlencoded");
    for (content_type, body) in [
        (None, b"grant_type=client_credentials".to_vec()),
        (
            Some("application/json"),
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (form, b"grant_type=client_credentials&scope=%ZZ".to_vec()),
        (form, b"grant_type=client_credentials&scope=%C3%28".to_vec()),
        (
            form,
            b"grant_type=client_credentials&scope=\xff\xfe".to_vec(),
        ),
    ] {
        let a = answer(raw(content_type, body)).await;
        assert_eq!(
            (a.error().0, a.error().1),
            (400, "invalid_request"),
            "{content_type:?}"
        );
    }
    let big = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(70 * 1024)
    );
    let a = answer(raw(form, big.into_bytes())).await;
    assert_eq!(a.status, 413);
    let just_under = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(60 * 1024)
    );
    let a = post_form(&url, s.basic(), &[]).await;
    assert_eq!(a.status, 400);
    let a = answer(
        raw(form, just_under.into_bytes()).basic_auth(&s.client.id, s.client.secret.as_ref()),
    )
    .await;
    assert_eq!(a.status, 200, "a body under 64 KiB is read");
}

#[tokio::test]
async fn a_standard_oauth_client_library_works_with_both_authentication_methods() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthType, ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword,
        ResourceOwnerUsername, Scope, TokenResponse as _, TokenUrl,
    };
    let s = Setup::new();
    create_user(&s.db.url, "carol", "pw-123456", &[]);
    let http = reqwest::Client::new();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = BasicClient::new(ClientId::new(s.client.id.clone()))
            .set_client_secret(ClientSecret::new(s.client.secret.clone().unwrap()))
            .set_token_uri(TokenUrl::new(s.token_url()).unwrap())
            .set_auth_type(auth.clone());
        let cc = client
            .exchange_client_credentials()
            .add_scope(Scope::new("read".into()))
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(cc.scopes().unwrap()[0].as_str(), "read");
        assert!(cc.refresh_token().is_none());

        let username = ResourceOwnerUsername::new("carol".into());
        let password = ResourceOwnerPassword::new("pw-123456".into());
        let login = client
            .exchange_password(&username, &password)
            .request_async(&http)
            .await
            .unwrap();
        let refresh = login.refresh_token().unwrap().secret().clone();
        let refreshed = client
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request_async(&http)
            .await
            .unwrap();
        assert!(refreshed.expires_in().unwrap().as_secs() > 0);
        assert_ne!(
            refreshed.access_token().secret(),
            login.access_token().secret()
        );
    }
}
