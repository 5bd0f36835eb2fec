//! oauthd's request check (SPEC §9) behind real reverse proxies, each running
//! the configuration that README shows (`deploy/proxies/`): nginx with
//! `auth_request` and Caddy with `forward_auth`, in front of an echo upstream
//! that shows what got through.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use common::proxies::{Caddy, Nginx};
use common::upstream::{Echoed, Upstream};
use common::{IDENTITY_HEADERS, Server, TestClient, TestDb, cli, create_client};
use serde_json::Value;

/// oauthd with one client allowed the scopes `read write`, and the API it
/// protects.
struct Protected {
    server: Server,
    upstream: Upstream,
    client: TestClient,
    db: TestDb,
}

impl Protected {
    fn new() -> Self {
        let db = TestDb::new();
        let client = create_client(&db.url, &["--scopes", "read write"]);
        Self {
            server: Server::start(&db),
            upstream: Upstream::start(),
            client,
            db,
        }
    }

    fn oauthd(&self) -> SocketAddr {
        self.server.http_addr
    }

    /// A client_credentials access token (a JWT), with the client's scopes
    /// unless `scope` narrows them.
    async fn token(&self, scope: Option<&str>) -> String {
        let mut request = common::client_credentials_request(&self.client);
        request.scope = scope.map(str::to_owned);
        self.server
            .grpc()
            .await
            .issue_token(request)
            .await
            .unwrap()
            .into_inner()
            .access_token
    }

    /// A new API key of the client, as `apikey create` prints it.
    fn api_key(&self) -> Value {
        cli(
            &self.db.url,
            &["apikey", "create", "--client", &self.client.id],
        )
    }
}

/// A proxy's answer to the client.
struct Answer {
    status: u16,
    challenges: Vec<String>,
    body: String,
}

impl Answer {
    /// What reached the upstream, from a 200 it gave.
    fn echoed(&self) -> Echoed {
        assert_eq!(self.status, 200, "not let through: {}", self.body);
        serde_json::from_str(&self.body).unwrap()
    }

    /// The one `WWW-Authenticate` header.
    fn challenge(&self) -> &str {
        assert_eq!(self.challenges.len(), 1, "{:?}", self.challenges);
        &self.challenges[0]
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send(reqwest::Method::GET, url, headers, "").await
}

async fn send(method: reqwest::Method, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = http.request(method, url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        challenges: response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect(),
        body: response.text().await.unwrap(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The identity of a client_credentials token or an API key of `client`, as
/// it reached the upstream.
fn assert_client_identity(echoed: &Echoed, client: &TestClient, credential: &str, scope: &str) {
    assert_eq!(echoed.header("x-auth-subject"), Some(client.id.as_str()));
    assert_eq!(echoed.header("x-auth-client-id"), Some(client.id.as_str()));
    assert_eq!(echoed.header("x-auth-credential"), Some(credential));
    assert_eq!(echoed.header("x-auth-scope"), Some(scope));
    let expires: u64 = echoed
        .header("x-auth-expires")
        .expect("X-Auth-Expires reached the upstream")
        .parse()
        .unwrap();
    assert!(expires > now(), "expires {expires}");
}

/// The scopes `apikey create` printed, space-separated.
fn scopes_of(key: &Value) -> String {
    match &key["scopes"] {
        Value::Array(scopes) => scopes
            .iter()
            .map(|scope| scope.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" "),
        scopes => scopes.as_str().unwrap().to_owned(),
    }
}

/// A JWT whose signature no longer matches.
fn tampered(token: &str) -> String {
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    format!("{}{last}", &token[..token.len() - 1])
}

/// Every value under any of the six identity headers.
fn identity_values(echoed: &Echoed) -> Vec<&str> {
    IDENTITY_HEADERS
        .into_iter()
        .flat_map(|name| echoed.all(name))
        .collect()
}

/// What a client forges to pass for someone else.
const FORGED: [(&str, &str); 3] = [
    ("X-Auth-Subject", "admin"),
    ("X-Auth-Username", "admin"),
    ("X-Auth-Scope", "admin"),
];

/// Sends `carrier`'s valid credential with forged identity headers, and
/// returns what reached the upstream, which must hold none of them.
async fn with_forged_identity(url: &str, carrier: (&str, &str)) -> Echoed {
    let mut headers = FORGED.to_vec();
    headers.push(carrier);
    let echoed = get(url, &headers).await.echoed();
    assert!(!identity_values(&echoed).contains(&"admin"), "{echoed:?}");
    echoed
}

/// A form POST to the API, whose body the check must leave to the upstream.
async fn post_form(url: &str, bearer: &str) -> Echoed {
    let form = "name=widget&count=2";
    let answer = send(
        reqwest::Method::POST,
        url,
        &[
            ("Authorization", bearer),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form,
    )
    .await;
    let echoed = answer.echoed();
    assert_eq!(echoed.method, "POST");
    assert_eq!(echoed.body, form);
    echoed
}

#[tokio::test]
async fn nginx_lets_a_token_through_in_each_tapdata_carrier_with_its_identity() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let token = protected.token(None).await;
    let bearer = format!("bearer {token}");

    for (url, headers) in [
        (
            nginx.url("/api/items"),
            vec![("authorization", bearer.as_str())],
        ),
        (
            nginx.url("/api/items"),
            vec![("access_token", token.as_str())],
        ),
        (
            nginx.url(&format!("/api/items?access_token={token}")),
            vec![],
        ),
    ] {
        let answer = get(&url, &headers).await;
        assert_eq!(
            answer.status,
            200,
            "{headers:?}: {}\n{}",
            answer.body,
            nginx.log()
        );
        let echoed = answer.echoed();
        assert!(echoed.uri.starts_with("/api/items"), "{}", echoed.uri);
        assert_client_identity(&echoed, &protected.client, "access_token", "read write");
        // An empty value removes the header: this client has no user.
        assert_eq!(echoed.header("x-auth-username"), None);
    }
    assert_eq!(protected.upstream.served(), 3);
}

#[tokio::test]
async fn nginx_lets_an_api_key_in_x_api_key_through_as_its_client() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let key = protected.api_key();

    let answer = get(
        &nginx.url("/api/items"),
        &[("X-API-Key", key["api_key"].as_str().unwrap())],
    )
    .await;

    assert_eq!(answer.status, 200, "{}\n{}", answer.body, nginx.log());
    let echoed = answer.echoed();
    assert_client_identity(&echoed, &protected.client, "api_key", &scopes_of(&key));
}

#[tokio::test]
async fn nginx_answers_a_request_without_a_credential_with_oauthds_bare_challenge() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);

    let answer = get(&nginx.url("/api/items"), &[]).await;

    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.challenge(), r#"Bearer realm="oauthd""#);
    assert_eq!(protected.upstream.served(), 0);
}

#[tokio::test]
async fn nginx_answers_an_invalid_token_with_invalid_token() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let token = tampered(&protected.token(None).await);

    for headers in [
        vec![("Authorization", format!("Bearer {token}"))],
        vec![("access_token", token.clone())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = get(&nginx.url("/api/items"), &headers).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert!(
            answer
                .challenge()
                .starts_with(r#"Bearer realm="oauthd", error="invalid_token""#),
            "{}",
            answer.challenge()
        );
    }
    assert_eq!(protected.upstream.served(), 0);
}

#[tokio::test]
async fn nginx_answers_two_credentials_with_oauthds_400_not_a_500() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let (first, second) = (protected.token(None).await, protected.token(None).await);
    let bearer = format!("Bearer {first}");
    let answer = get(
        &nginx.url("/api/items"),
        &[
            ("Authorization", bearer.as_str()),
            ("X-API-Key", second.as_str()),
        ],
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer
            .challenge()
            .starts_with(r#"Bearer realm="oauthd", error="invalid_request""#),
        "{}",
        answer.challenge()
    );
    assert_eq!(protected.upstream.served(), 0);
    // The API's own answers pass as they are.
    let bearer = format!("Bearer {first}");
    let answer = get(
        &nginx.url("/api/items"),
        &[("Authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn nginx_answers_a_token_without_the_scope_a_location_requires_with_403() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let write_only = format!("Bearer {}", protected.token(Some("write")).await);
    let read = format!("Bearer {}", protected.token(Some("read")).await);

    // /reports/ requires `read` (deploy/proxies/nginx.conf).
    let refused = get(&nginx.url("/reports/q1"), &[("Authorization", &write_only)]).await;
    assert_eq!(refused.status, 403, "{}\n{}", refused.body, nginx.log());
    let challenge = refused.challenge();
    assert!(
        challenge.starts_with(r#"Bearer realm="oauthd", error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="read""#), "{challenge}");
    assert_eq!(protected.upstream.served(), 0);

    // Elsewhere no scope is required, and a token that holds `read` passes.
    let elsewhere = get(&nginx.url("/api/items"), &[("Authorization", &write_only)]).await;
    assert_eq!(elsewhere.echoed().header("x-auth-scope"), Some("write"));
    let reports = get(&nginx.url("/reports/q1"), &[("Authorization", &read)]).await;
    assert_eq!(reports.echoed().header("x-auth-scope"), Some("read"));
}

#[tokio::test]
async fn nginx_never_lets_a_forged_identity_header_reach_the_upstream() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let bearer = format!("Bearer {}", protected.token(None).await);

    let echoed = with_forged_identity(&nginx.url("/api/items"), ("Authorization", &bearer)).await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
    assert_eq!(echoed.header("x-auth-credential"), Some("access_token"));
    assert_eq!(echoed.header("x-auth-username"), None);
}

#[tokio::test]
async fn nginx_never_lets_a_forged_identity_header_reach_the_upstream_with_an_api_key() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let key = protected.api_key();

    let echoed = with_forged_identity(
        &nginx.url("/api/items"),
        ("X-API-Key", key["api_key"].as_str().unwrap()),
    )
    .await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
    assert_eq!(echoed.header("x-auth-credential"), Some("api_key"));
    assert_eq!(echoed.header("x-auth-username"), None);
}

#[tokio::test]
async fn nginx_lets_a_post_through_with_its_body_untouched_by_the_check() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let bearer = format!("Bearer {}", protected.token(None).await);

    let echoed = post_form(&nginx.url("/api/items"), &bearer).await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
}

#[tokio::test]
async fn caddy_lets_a_token_through_in_each_tapdata_carrier_with_its_identity() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let token = protected.token(None).await;
    let bearer = format!("bearer {token}");

    for (url, headers) in [
        (
            caddy.url("/api/items"),
            vec![("authorization", bearer.as_str())],
        ),
        (
            caddy.url("/api/items"),
            vec![("access_token", token.as_str())],
        ),
        (
            caddy.url(&format!("/api/items?access_token={token}")),
            vec![],
        ),
    ] {
        let answer = get(&url, &headers).await;
        assert_eq!(
            answer.status,
            200,
            "{headers:?}: {}\n{}",
            answer.body,
            caddy.log()
        );
        let echoed = answer.echoed();
        assert!(echoed.uri.starts_with("/api/items"), "{}", echoed.uri);
        assert_client_identity(&echoed, &protected.client, "access_token", "read write");
        // Caddy copies the empty value as an empty header.
        assert_eq!(echoed.header("x-auth-username"), Some(""));
    }
    assert_eq!(protected.upstream.served(), 3);
}

#[tokio::test]
async fn caddy_lets_an_api_key_in_x_api_key_through_as_its_client() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let key = protected.api_key();

    let answer = get(
        &caddy.url("/api/items"),
        &[("X-API-Key", key["api_key"].as_str().unwrap())],
    )
    .await;

    assert_eq!(answer.status, 200, "{}\n{}", answer.body, caddy.log());
    let echoed = answer.echoed();
    assert_client_identity(&echoed, &protected.client, "api_key", &scopes_of(&key));
    assert_eq!(echoed.header("x-auth-username"), Some(""));
}

#[tokio::test]
async fn caddy_passes_oauthds_401_and_its_challenge_to_the_client() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let token = tampered(&protected.token(None).await);

    let missing = get(&caddy.url("/api/items"), &[]).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.challenge(), r#"Bearer realm="oauthd""#);

    let invalid = get(
        &caddy.url("/api/items"),
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(invalid.status, 401, "{}", invalid.body);
    assert!(
        invalid
            .challenge()
            .starts_with(r#"Bearer realm="oauthd", error="invalid_token""#),
        "{}",
        invalid.challenge()
    );
    // Caddy hands back oauthd's own answer, body included.
    let body: Value = serde_json::from_str(&invalid.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(protected.upstream.served(), 0);
}

#[tokio::test]
async fn caddy_never_lets_a_forged_identity_header_reach_the_upstream() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let bearer = format!("Bearer {}", protected.token(None).await);

    let echoed = with_forged_identity(&caddy.url("/api/items"), ("Authorization", &bearer)).await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
    assert_eq!(echoed.header("x-auth-credential"), Some("access_token"));
    assert_eq!(echoed.header("x-auth-username"), Some(""));
}

#[tokio::test]
async fn caddy_never_lets_a_forged_identity_header_reach_the_upstream_with_an_api_key() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let key = protected.api_key();

    let echoed = with_forged_identity(
        &caddy.url("/api/items"),
        ("X-API-Key", key["api_key"].as_str().unwrap()),
    )
    .await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
    assert_eq!(echoed.header("x-auth-credential"), Some("api_key"));
    assert_eq!(echoed.header("x-auth-username"), Some(""));
}

#[tokio::test]
async fn caddy_lets_a_post_through_with_its_body_untouched_by_the_check() {
    let protected = Protected::new();
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let bearer = format!("Bearer {}", protected.token(None).await);

    let echoed = post_form(&caddy.url("/api/items"), &bearer).await;

    assert_eq!(
        echoed.header("x-auth-subject"),
        Some(protected.client.id.as_str())
    );
}

#[tokio::test]
async fn a_clients_scope_query_parameter_is_never_a_requirement_through_either_proxy() {
    let protected = Protected::new();
    let nginx = Nginx::start(protected.oauthd(), protected.upstream.addr);
    let caddy = Caddy::start(protected.oauthd(), protected.upstream.addr);
    let bearer = format!("Bearer {}", protected.token(Some("read")).await);

    // An API's own `scope` parameter, which the token does not hold and which
    // is no scope at all: only the proxy configuration sets requirements.
    for url in [
        nginx.url("/api/search?scope=admin%20everything&q=1"),
        caddy.url("/api/search?scope=admin%20everything&q=1"),
    ] {
        let answer = get(&url, &[("Authorization", &bearer)]).await;
        assert_eq!(answer.status, 200, "{url}: {}", answer.body);
        assert_eq!(
            answer.echoed().uri,
            "/api/search?scope=admin%20everything&q=1"
        );
    }
}
