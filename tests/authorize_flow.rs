//! The browser flows of SPEC §7 against the real binary, through a client
//! that keeps cookies and follows no redirect: the code flow with PKCE and
//! the implicit flow through oauthd's login and consent pages, the code
//! redeemed over HTTP and through the `oauth2` crate (tests/grpc_grants.rs
//! redeems one over gRPC), the endpoint taken by POST, the user's answers
//! and `prompt=none`, forms tampered with, the loopback rule, a registered
//! query, what the database keeps, and the metadata (SPEC §4). The other
//! errors, at the endpoint and at the token request, are in
//! tests/authorize_errors.rs; sessions and the pages' rules are in
//! tests/authorize_sessions.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flows::*;
use common::user_agent::redirect_params;
use common::*;

#[tokio::test]
async fn code_flow_with_pkce_goes_through_login_and_consent_to_tokens_for_the_user() {
    let flows = Flows::start();
    let alice = flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    let (challenge, verifier) = pkce();

    let login = agent.get(&code_request(&app, &challenge, &[])).await;
    assert_login_page(&login);
    assert!(
        login
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(login.text().contains(APP_NAME), "{}", login.body);
    // Readable on a phone, and nothing to run.
    assert!(login.body.contains("name=\"viewport\""), "{}", login.body);
    assert!(!login.body.to_ascii_lowercase().contains("<script"));
    let (username, label) = login
        .labelled_input("username")
        .expect("a labelled username");
    assert!(!label.is_empty());
    assert!(username.contains("type=\"text\""), "{username}");
    let (password, label) = login
        .labelled_input("password")
        .expect("a labelled password");
    assert!(!label.is_empty());
    assert!(password.contains("type=\"password\""), "{password}");
    let csrf = login.hidden("csrf_token").expect("a hidden csrf_token");
    assert_eq!(agent.cookie("oauthd_csrf"), Some(csrf));
    assert_eq!(login.hidden("state").as_deref(), Some("af0ifjsldkj"));
    assert_eq!(login.hidden("code_challenge"), Some(challenge.clone()));

    let sent = agent
        .submit(&login, &[("username", "alice"), ("password", "alice-pw-1")])
        .await;
    assert_eq!(sent.status, 303);
    assert!(
        sent.location().unwrap().starts_with("/oauth/authorize?"),
        "{:?}",
        sent.location()
    );
    assert!(agent.cookie("oauthd_session").is_some());

    let consent = agent.follow(&sent).await;
    assert_consent_page(&consent);
    let text = consent.text();
    assert!(text.contains(APP_NAME), "{text}");
    assert!(text.contains("alice"), "{text}");
    for scope in ["read", "write"] {
        assert!(
            consent.body.contains(&format!("<li>{scope}</li>")),
            "{text}"
        );
    }

    let allowed = decide(&agent, &consent, "allow").await;
    let params = redirect_params(allowed.location().unwrap(), APP_URI, false);
    assert_eq!(params["state"], "af0ifjsldkj");
    assert_eq!(params["iss"], ISSUER);
    let code = code_of(&allowed, ISSUER);

    let tokens = flows.redeem(&app, &code, &verifier).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read write");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let access = tokens["access_token"].as_str().unwrap();
    let info = flows.introspect(&app, access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], app.id.as_str());
    assert_eq!(info["scope"], "read write");

    // The refresh token is a real one, for the same user.
    let (status, refreshed) = flows
        .token(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let info = flows
        .introspect(&app, refreshed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["sub"], alice.as_str());
}

#[tokio::test]
async fn the_oauth2_crate_redeems_a_code_as_a_public_client_with_pkce() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse as _, TokenUrl,
    };
    let flows = Flows::start();
    let alice = flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &["--public"]);
    assert!(app.secret.is_none());
    let resource_server = create_client(&flows.db.url, &[]);
    let client = BasicClient::new(ClientId::new(app.id.clone()))
        .set_auth_uri(AuthUrl::new(flows.server.url("/oauth/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(flows.server.url("/oauth/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(APP_URI.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    let agent = flows.agent();
    let allowed = log_in_and_allow(&agent, url.as_str(), "alice", "alice-pw-1").await;
    let params = redirect_params(allowed.location().unwrap(), APP_URI, false);
    assert_eq!(params["state"], *state.secret());
    assert_eq!(params["iss"], ISSUER);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<&str> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(scopes, ["read"]);
    assert!(tokens.refresh_token().is_some());
    assert!(tokens.expires_in().unwrap().as_secs() > 0);
    let info = flows
        .introspect(&resource_server, tokens.access_token().secret())
        .await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["username"], "alice");
}

#[tokio::test]
async fn implicit_answers_in_the_fragment_with_a_token_and_no_refresh_token() {
    let flows = Flows::start();
    let alice = flows.user("alice", "alice-pw-1");
    // A name and a state that would be markup, were they not escaped.
    let spa = flows.client(
        "<i>Single Page</i>",
        &["--public", "--grant-types", "implicit,refresh_token"],
    );
    let state = "\"><b>s p&amp;a#ü</b>";
    let resource_server = create_client(&flows.db.url, &[]);
    let agent = flows.agent();
    let request = authorize_path(&[
        ("response_type", "token"),
        ("client_id", &spa.id),
        ("redirect_uri", APP_URI),
        ("scope", "read"),
        ("state", state),
    ]);
    let login = agent.get(&request).await;
    let consent = log_in(&agent, &login, "alice", "alice-pw-1").await;
    for page in [&login, &consent] {
        assert!(!page.body.contains("<b>"), "{}", page.body);
        assert!(!page.body.contains("<i>"), "{}", page.body);
        assert!(page.text().contains("<i>Single Page</i>"), "{}", page.body);
    }
    let allowed = decide(&agent, &consent, "allow").await;
    let location = allowed.location().unwrap();
    assert!(!location.contains('?'), "{location}");
    let params = redirect_params(location, APP_URI, true);
    assert_eq!(params["token_type"], "Bearer");
    assert_eq!(params["scope"], "read");
    assert_eq!(params["state"], state);
    assert_eq!(params["iss"], ISSUER);
    assert!(params["expires_in"].parse::<u64>().unwrap() > 0);
    assert!(!params.contains_key("refresh_token"), "{params:?}");
    assert!(!params.contains_key("code"), "{params:?}");
    let info = flows
        .introspect(&resource_server, &params["access_token"])
        .await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["scope"], "read");
}

#[tokio::test]
async fn a_client_without_implicit_gets_unauthorized_client_in_the_fragment() {
    let flows = Flows::start();
    let app = flows.client(APP_NAME, &[]);
    let page = flows
        .agent()
        .get(&authorize_path(&[
            ("response_type", "token"),
            ("client_id", &app.id),
            ("state", "xyz"),
        ]))
        .await;
    assert_eq!(page.status, 302);
    let params = redirect_params(page.location().unwrap(), APP_URI, true);
    assert_eq!(params["error"], "unauthorized_client");
    assert!(params["error_description"].contains("token"), "{params:?}");
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("access_token"));
}

#[tokio::test]
async fn the_endpoint_takes_a_post_and_answers_it_with_see_other() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    let (challenge, verifier) = pkce();
    let form = |scope: &str| -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", app.id.as_str()),
            ("scope", scope),
            ("state", "xyz"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
    };
    let refused = agent.post("/oauth2/authorize", &form("admin")).await;
    assert_eq!(refused.status, 303);
    let params = redirect_params(refused.location().unwrap(), APP_URI, false);
    assert_eq!(params["error"], "invalid_scope");

    let login = agent.post("/api/v1/oauth2/authorize", &form("read")).await;
    let consent = log_in(&agent, &login, "alice", "alice-pw-1").await;
    let allowed = decide(&agent, &consent, "allow").await;
    let code = code_of(&allowed, ISSUER);
    // No redirect_uri in the request: none is needed at the token endpoint.
    let (status, body) = flows
        .token(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read");
}

#[tokio::test]
async fn deny_prompt_none_and_the_consent_answers_redirect_with_their_errors() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    let (challenge, _) = pkce();
    let silent = code_request(&app, &challenge, &[("prompt", "none")]);

    let page = agent.get(&silent).await;
    let params = error_redirect(&page, APP_URI, false, "no session");
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "af0ifjsldkj");

    let login = agent.get(&code_request(&app, &challenge, &[])).await;
    let consent = log_in(&agent, &login, "alice", "alice-pw-1").await;
    let page = agent.get(&silent).await;
    let params = error_redirect(&page, APP_URI, false, "no consent yet");
    assert_eq!(params["error"], "consent_required");
    assert_eq!(params["state"], "af0ifjsldkj");

    // Neither allow nor deny: no answer at all.
    let neither = agent.submit(&consent, &[("decision", "maybe")]).await;
    assert_eq!(neither.status, 400, "{}", neither.body);
    assert_eq!(neither.location(), None);

    let denied = decide(&agent, &consent, "deny").await;
    assert_eq!(denied.status, 303);
    let params = redirect_params(denied.location().unwrap(), APP_URI, false);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "af0ifjsldkj");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("code"));
    // A denial is not remembered as consent.
    let page = agent.get(&silent).await;
    let params = error_redirect(&page, APP_URI, false, "after deny");
    assert_eq!(params["error"], "consent_required");

    let consent = agent.get(&code_request(&app, &challenge, &[])).await;
    let allowed = decide(&agent, &consent, "allow").await;
    code_of(&allowed, ISSUER);
    let page = agent.get(&silent).await;
    assert_eq!(page.status, 302);
    code_of(&page, ISSUER);
}

#[tokio::test]
async fn a_tampered_form_gets_no_further_than_the_same_request_would() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    let (challenge, _) = pkce();
    let login = agent.get(&code_request(&app, &challenge, &[])).await;
    assert_login_page(&login);
    let evil = [("redirect_uri", "https://evil.example/cb")];

    let sent = agent
        .submit(
            &login,
            &[("username", "alice"), ("password", "alice-pw-1"), evil[0]],
        )
        .await;
    assert_error_page(&sent, "not one the client registered", "login form");
    assert!(sent.set_cookie("oauthd_session").is_none());
    let sent = agent
        .submit(
            &login,
            &[
                ("username", "alice"),
                ("password", "alice-pw-1"),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303);
    let params = redirect_params(sent.location().unwrap(), APP_URI, false);
    assert_eq!(params["error"], "invalid_scope");
    assert!(sent.set_cookie("oauthd_session").is_none());

    let consent = log_in(&agent, &login, "alice", "alice-pw-1").await;
    let sent = agent
        .submit(&consent, &[("decision", "allow"), evil[0]])
        .await;
    assert_error_page(&sent, "not one the client registered", "consent form");
    let sent = agent
        .submit(&consent, &[("decision", "allow"), ("client_id", "nobody")])
        .await;
    assert_error_page(&sent, "unknown or disabled", "consent form, client");
    // Nothing was approved.
    assert_consent_page(&agent.get(&code_request(&app, &challenge, &[])).await);
}

#[tokio::test]
async fn a_public_clients_loopback_uri_matches_on_any_port_and_a_confidential_ones_does_not() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let registered = "http://127.0.0.1/cb";
    let native = flows.client("Native", &["--public", "--redirect-uri", registered]);
    let web = flows.client("Web", &["--redirect-uri", registered]);
    let agent = flows.agent();
    let (challenge, verifier) = pkce();
    let on_port = "http://127.0.0.1:54321/cb";
    let request = |client: &TestClient, uri: &str, scope: &str| {
        authorize_path(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", uri),
            ("scope", scope),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    };

    // An error goes to the port asked for.
    let page = agent.get(&request(&native, on_port, "admin")).await;
    let params = error_redirect(&page, on_port, false, "loopback");
    assert_eq!(params["error"], "invalid_scope");

    let allowed = log_in_and_allow(
        &agent,
        &request(&native, on_port, "read"),
        "alice",
        "alice-pw-1",
    )
    .await;
    let params = redirect_params(allowed.location().unwrap(), on_port, false);
    assert_eq!(params["iss"], ISSUER);
    let (status, body) = flows
        .token(
            &native,
            &[
                ("grant_type", "authorization_code"),
                ("code", &params["code"]),
                ("redirect_uri", on_port),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for (client, uri) in [
        (&web, on_port),
        (&native, "http://localhost:54321/cb"),
        (&native, "http://127.0.0.1:54321/other"),
        (&native, "https://127.0.0.1:54321/cb"),
        (&native, "http://127.0.0.1:54321@evil.example/cb"),
        (&native, "http://127.0.0.1:54321/cb#x"),
        (&native, "http://127.0.0.1:54321/cb?x=1"),
    ] {
        let page = agent.get(&request(client, uri, "read")).await;
        assert_error_page(&page, "not one the client registered", uri);
    }
    // The confidential client's own URI, as registered, is fine.
    let page = agent.get(&request(&web, registered, "read")).await;
    assert_consent_page(&page);
}

#[tokio::test]
async fn codes_and_sessions_are_stored_only_as_hashes() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    let (challenge, _) = pkce();
    let allowed = log_in_and_allow(
        &agent,
        &code_request(&app, &challenge, &[]),
        "alice",
        "alice-pw-1",
    )
    .await;
    let code = code_of(&allowed, ISSUER);
    let session = agent.cookie("oauthd_session").unwrap();
    let stored = stored_bytes(&flows.db).await;
    assert!(!stored.is_empty());
    for secret in [&code, &session] {
        let found = stored
            .windows(secret.len())
            .any(|window| window == secret.as_bytes());
        assert!(!found, "{secret} is stored in the clear");
    }
}

/// Everything the database holds, as bytes: the SQLite files, or every
/// row of every table of the PostgreSQL database as text.
async fn stored_bytes(db: &TestDb) -> Vec<u8> {
    use sea_orm::{ConnectionTrait as _, Statement};
    if let Some(path) = &db.sqlite_path {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        return bytes;
    }
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    let backend = conn.get_database_backend();
    let tables = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        ))
        .await
        .unwrap();
    let mut bytes = Vec::new();
    for table in tables {
        let name: String = table.try_get("", "tablename").unwrap();
        let rows = conn
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT t::text AS row FROM \"{name}\" t"),
            ))
            .await
            .unwrap();
        for row in rows {
            let text: String = row.try_get("", "row").unwrap();
            bytes.extend(text.into_bytes());
        }
    }
    conn.close().await.unwrap();
    bytes
}

#[tokio::test]
async fn a_registered_query_is_kept_and_the_answer_follows_it() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let registered = "https://app.example/cb?from=oauthd&x=%2F";
    let app = flows.client(APP_NAME, &["--redirect-uri", registered, "--skip-consent"]);
    let agent = flows.agent();
    let (challenge, _) = pkce();
    let request = |scope: &str| {
        authorize_path(&[
            ("response_type", "code"),
            ("client_id", &app.id),
            ("redirect_uri", registered),
            ("scope", scope),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    };
    let login = agent.get(&request("read")).await;
    for (answer, names) in [
        (log_in(&agent, &login, "alice", "alice-pw-1").await, "code"),
        (agent.get(&request("admin")).await, "error"),
    ] {
        assert_eq!(answer.status, 302, "{}", answer.body);
        let location = answer.location().unwrap();
        let rest = location
            .strip_prefix(&format!("{registered}&"))
            .unwrap_or_else(|| panic!("{location}"));
        let params: std::collections::BTreeMap<_, _> = form_urlencoded::parse(rest.as_bytes())
            .into_owned()
            .collect();
        assert!(params.contains_key(names), "{location}");
        assert_eq!(params["state"], "xyz");
        assert_eq!(params["iss"], ISSUER);
    }
}

#[tokio::test]
async fn the_metadata_announces_the_browser_flows() {
    let flows = Flows::start();
    let metadata: serde_json::Value =
        reqwest::get(flows.server.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{ISSUER}/oauth/authorize")
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code", "token"])
    );
    let modes = metadata["response_modes_supported"].as_array().unwrap();
    for mode in ["query", "fragment"] {
        assert!(modes.iter().any(|m| m == mode), "{metadata}");
    }
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    for grant in ["authorization_code", "implicit"] {
        assert!(grants.iter().any(|g| g == grant), "{metadata}");
    }
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.iter().any(|m| m == "none"), "{metadata}");
}
