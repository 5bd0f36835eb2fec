//! Every error of SPEC §7 against the real binary. At the authorization
//! endpoint: `400` and oauthd's own page, never a redirect, while the client
//! or the redirect URI cannot be trusted; otherwise a redirect to the
//! registered URI with `error`, `error_description`, `state` and `iss`, in
//! the query for `code` and in the fragment for `token`. At the token request
//! (`grant_type=authorization_code`, with codes got through the pages): single
//! use and the revocation a replay brings, concurrent redemptions, expiry, and
//! every `invalid_grant`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::flows::*;
use common::user_agent::UserAgent;
use common::*;

#[tokio::test]
async fn a_bad_client_or_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let flows = Flows::start();
    let one = flows.client(APP_NAME, &[]).id;
    let two = flows
        .client(
            "Two",
            &[
                "--redirect-uri",
                APP_URI,
                "--redirect-uri",
                "https://app.example/other",
            ],
        )
        .id;
    let disabled = flows.client("Off", &[]).id;
    cli(&flows.db.url, &["client", "disable", &disabled]);
    let (challenge, _) = pkce();
    let unregistered = "not one the client registered";
    // (case, the request's client_id and redirect_uri, what the page says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("no client_id", vec![], "no client_id"),
        (
            "unknown client",
            vec![("client_id", "no-such-client")],
            "unknown or disabled",
        ),
        (
            "disabled client",
            vec![("client_id", &disabled)],
            "unknown or disabled",
        ),
        (
            "repeated client_id",
            vec![("client_id", &one), ("client_id", &one)],
            "client_id is repeated or malformed",
        ),
        (
            "no redirect_uri, two registered",
            vec![("client_id", &two)],
            "no redirect_uri",
        ),
        (
            "unregistered",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://evil.example/cb"),
            ],
            unregistered,
        ),
        (
            "javascript:",
            vec![("client_id", &one), ("redirect_uri", "javascript:alert(1)")],
            unregistered,
        ),
        (
            "with a fragment",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://app.example/cb#x"),
            ],
            unregistered,
        ),
        (
            "a prefix of the registered one",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://app.example/c"),
            ],
            unregistered,
        ),
        (
            "longer than the registered one",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://app.example/cb/x"),
            ],
            unregistered,
        ),
        (
            "in other case",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://APP.example/cb"),
            ],
            unregistered,
        ),
        (
            "another client's",
            vec![
                ("client_id", &one),
                ("redirect_uri", "https://app.example/other"),
            ],
            unregistered,
        ),
        (
            "repeated redirect_uri",
            vec![
                ("client_id", &one),
                ("redirect_uri", APP_URI),
                ("redirect_uri", APP_URI),
            ],
            "redirect_uri is repeated or malformed",
        ),
    ];
    let agent = flows.agent();
    for (case, params, says) in cases {
        // What would otherwise be redirected as an error, and what would be
        // a valid request, alike.
        for response_type in ["code", "token", "bogus"] {
            let mut request = params.clone();
            request.extend([
                ("response_type", response_type),
                ("scope", "read"),
                ("state", "xyz"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ]);
            let page = agent.get(&authorize_path(&request)).await;
            assert_error_page(&page, says, &format!("{case}, {response_type}"));
        }
    }
    // A client_id or redirect_uri that does not decode is malformed: a page.
    let redirect_uri = "https%3A%2F%2Fapp.example%2Fcb";
    for (query, says) in [
        (
            format!("client_id={one}&redirect_uri={redirect_uri}%zz"),
            "redirect_uri is repeated or malformed",
        ),
        (
            format!("client_id={one}%ff&redirect_uri={redirect_uri}"),
            "client_id is repeated or malformed",
        ),
    ] {
        let page = agent
            .get(&format!("/oauth/authorize?response_type=code&{query}"))
            .await;
        assert_error_page(&page, says, &query);
    }
}

#[tokio::test]
async fn other_errors_redirect_with_state_and_iss_in_the_query_for_code() {
    let flows = Flows::start();
    let app = flows.client(APP_NAME, &[]);
    let public = flows.client("Public", &["--public"]);
    let (challenge, _) = pkce();
    let base = |client: &TestClient| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", APP_URI)
            .append_pair("state", "xyz")
            .finish()
    };
    let pkce_pair = format!("code_challenge={challenge}&code_challenge_method=S256");
    let long_state = "s".repeat(10 * 1024);
    let cases: Vec<(&str, &TestClient, String, &str, &str)> = vec![
        (
            "missing response_type",
            &app,
            pkce_pair.clone(),
            "invalid_request",
            "response_type",
        ),
        (
            "unsupported response_type",
            &app,
            format!("response_type=id_token&{pkce_pair}"),
            "unsupported_response_type",
            "id_token",
        ),
        (
            "repeated scope",
            &app,
            format!("response_type=code&scope=read&scope=write&{pkce_pair}"),
            "invalid_request",
            "scope",
        ),
        (
            "repeated response_type",
            &app,
            format!("response_type=code&response_type=code&{pkce_pair}"),
            "invalid_request",
            "response_type",
        ),
        (
            "invalid percent-encoding",
            &app,
            format!("response_type=code&scope=%zz&{pkce_pair}"),
            "invalid_request",
            "scope",
        ),
        (
            "plain PKCE",
            &app,
            format!("response_type=code&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
            "S256",
        ),
        (
            "a challenge without a method, which means plain",
            &app,
            format!("response_type=code&code_challenge={challenge}"),
            "invalid_request",
            "S256",
        ),
        (
            "a challenge that is no S256 hash",
            &app,
            "response_type=code&code_challenge=abc&code_challenge_method=S256".to_owned(),
            "invalid_request",
            "code_challenge",
        ),
        (
            "PKCE missing, a confidential client that requires it",
            &app,
            "response_type=code".to_owned(),
            "invalid_request",
            "code_challenge",
        ),
        (
            "PKCE missing, a public client",
            &public,
            "response_type=code".to_owned(),
            "invalid_request",
            "code_challenge",
        ),
        (
            "a scope the client does not have",
            &app,
            format!("response_type=code&scope=read+admin&{pkce_pair}"),
            "invalid_scope",
            "admin",
        ),
        (
            "an unknown prompt",
            &app,
            format!("response_type=code&prompt=select_account&{pkce_pair}"),
            "invalid_request",
            "prompt",
        ),
        (
            "prompt=none with login",
            &app,
            format!("response_type=code&prompt=none+login&{pkce_pair}"),
            "invalid_request",
            "prompt",
        ),
    ];
    let agent = flows.agent();
    for path in [
        "/oauth/authorize",
        "/oauth2/authorize",
        "/api/v1/oauth2/authorize",
    ] {
        for (case, client, query, error, names) in &cases {
            let page = agent.get(&format!("{path}?{}&{query}", base(client))).await;
            let params = error_redirect(&page, APP_URI, false, case);
            assert_eq!(params["error"], *error, "{case}: {params:?}");
            let description = &params["error_description"];
            assert!(description.contains(names), "{case}: {description}");
            assert_eq!(params["state"], "xyz", "{case}");
        }
    }

    // A state of 10 KB is refused, and not echoed.
    let page = agent
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={}&state={long_state}&{pkce_pair}",
            app.id
        ))
        .await;
    let params = error_redirect(&page, APP_URI, false, "10 KB state");
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("state"), "{params:?}");
    assert!(!params.contains_key("state"), "{params:?}");

    // Without a state, none comes back.
    let page = agent
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={}&scope=admin&{pkce_pair}",
            app.id
        ))
        .await;
    let params = error_redirect(&page, APP_URI, false, "no state");
    assert_eq!(params["error"], "invalid_scope");
    assert!(!params.contains_key("state"), "{params:?}");
}

#[tokio::test]
async fn errors_of_a_token_request_redirect_in_the_fragment() {
    let flows = Flows::start();
    let spa = flows.client(APP_NAME, &["--public", "--grant-types", "implicit"]);
    let base = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "token")
        .append_pair("client_id", &spa.id)
        .append_pair("redirect_uri", APP_URI)
        .append_pair("state", "xyz")
        .finish();
    let agent = flows.agent();
    for (case, query, error, names) in [
        ("invalid scope", "scope=admin", "invalid_scope", "admin"),
        (
            "repeated scope",
            "scope=read&scope=read",
            "invalid_request",
            "scope",
        ),
        (
            "invalid percent-encoding",
            "scope=%zz",
            "invalid_request",
            "scope",
        ),
        (
            "unknown prompt",
            "prompt=bogus",
            "invalid_request",
            "prompt",
        ),
    ] {
        let page = agent.get(&format!("/oauth/authorize?{base}&{query}")).await;
        let params = error_redirect(&page, APP_URI, true, case);
        assert_eq!(params["error"], error, "{case}: {params:?}");
        assert!(params["error_description"].contains(names), "{case}");
        assert_eq!(params["state"], "xyz", "{case}");
    }
    let page = agent
        .get(&format!("/oauth/authorize?{base}&prompt=none"))
        .await;
    let params = error_redirect(&page, APP_URI, true, "prompt=none");
    assert_eq!(params["error"], "login_required");
    let long_state = "s".repeat(10 * 1024);
    let page = agent
        .get(&authorize_path(&[
            ("response_type", "token"),
            ("client_id", &spa.id),
            ("state", &long_state),
        ]))
        .await;
    let params = error_redirect(&page, APP_URI, true, "10 KB state");
    assert_eq!(params["error"], "invalid_request");
    assert!(!params.contains_key("state"));
}

/// Logs `agent` in as alice, unless it is already, and approves `client`,
/// so that further requests get a code at once.
async fn sign_in_and_approve(agent: &UserAgent, client: &TestClient) {
    let (challenge, _) = pkce();
    let mut page = agent.get(&code_request(client, &challenge, &[])).await;
    if page.body.contains("action=\"/oauth/login\"") {
        page = log_in(agent, &page, "alice", "alice-pw-1").await;
    }
    decide(agent, &page, "allow").await;
}

/// A code for `client` with `challenge`, the user of `agent` having logged
/// in and approved the scopes before.
async fn fresh_code(
    flows: &Flows,
    agent: &UserAgent,
    client: &TestClient,
    challenge: &str,
) -> String {
    let page = agent.get(&code_request(client, challenge, &[])).await;
    assert_eq!(page.status, 302, "{}", page.body);
    code_of(&page, &flows.issuer)
}

/// Asserts an `invalid_grant` whose description contains `says`.
fn assert_invalid_grant(
    (status, body): &(reqwest::StatusCode, serde_json::Value),
    says: &str,
    case: &str,
) {
    assert_eq!(*status, 400, "{case}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{case}: {body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains(says), "{case}: {description}");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    for format in ["jwt", "opaque"] {
        replay_revokes(format).await;
    }
}

async fn replay_revokes(token_format: &str) {
    let flows = Flows::start_with(&["--token-format", token_format]);
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    sign_in_and_approve(&agent, &app).await;
    let (challenge, verifier) = pkce();
    let code = fresh_code(&flows, &agent, &app, &challenge).await;
    let first = flows.redeem(&app, &code, &verifier).await;
    let access = first["access_token"].as_str().unwrap();
    // A descendant of the code: the refresh token rotated once.
    let (status, second) = flows
        .token(
            &app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let second_access = second["access_token"].as_str().unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    for token in [access, second_access] {
        assert_eq!(flows.introspect(&app, token).await["active"], true);
    }

    let replay = flows
        .token(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_invalid_grant(&replay, "already been used", token_format);
    for token in [access, second_access] {
        let info = flows.introspect(&app, token).await;
        assert_eq!(info, serde_json::json!({"active": false}), "{token_format}");
    }
    let refreshed = flows
        .token(
            &app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", second_refresh),
            ],
        )
        .await;
    assert_invalid_grant(&refreshed, "revoked", token_format);
}

#[tokio::test]
async fn of_concurrent_redemptions_of_one_code_exactly_one_wins() {
    let flows = std::sync::Arc::new(Flows::start());
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    sign_in_and_approve(&agent, &app).await;
    let (challenge, verifier) = pkce();
    let code = fresh_code(&flows, &agent, &app, &challenge).await;
    let mut redemptions = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (flows, app, code, verifier) =
            (flows.clone(), app.clone(), code.clone(), verifier.clone());
        redemptions.spawn(async move {
            flows
                .token(
                    &app,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", APP_URI),
                        ("code_verifier", &verifier),
                    ],
                )
                .await
        });
    }
    let answers = redemptions.join_all().await;
    let winners: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for answer in answers.iter().filter(|(status, _)| *status != 200) {
        assert_invalid_grant(answer, "already been used", "a losing redemption");
    }
    // Each loser was a replay: what the winner got is revoked.
    let access = winners[0].1["access_token"].as_str().unwrap();
    assert_eq!(flows.introspect(&app, access).await["active"], false);
}

#[tokio::test]
async fn a_code_expires_after_authorization_code_ttl() {
    let flows = Flows::start_with(&["--authorization-code-ttl", "1"]);
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let agent = flows.agent();
    sign_in_and_approve(&agent, &app).await;
    let (challenge, verifier) = pkce();
    let code = fresh_code(&flows, &agent, &app, &challenge).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = flows
        .token(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_invalid_grant(&expired, "expired", "expired");
}

#[tokio::test]
async fn each_mismatch_at_the_token_endpoint_is_invalid_grant() {
    let flows = Flows::start();
    flows.user("alice", "alice-pw-1");
    let app = flows.client(APP_NAME, &[]);
    let other = flows.client("Other", &[]);
    let optional = flows.client("Optional", &["--pkce", "optional"]);
    let agent = flows.agent();
    for client in [&app, &other, &optional] {
        sign_in_and_approve(&agent, client).await;
    }
    let (_, another_verifier) = pkce();
    let short = "a".repeat(42);
    let long = "a".repeat(129);
    // (case, who redeems, redirect_uri, code_verifier, description)
    type Case<'a> = (
        &'a str,
        &'a TestClient,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "another verifier",
            &app,
            Some(APP_URI),
            Some(&another_verifier),
            "does not match",
        ),
        (
            "a 42-character verifier",
            &app,
            Some(APP_URI),
            Some(&short),
            "43 to 128",
        ),
        (
            "a 129-character verifier",
            &app,
            Some(APP_URI),
            Some(&long),
            "43 to 128",
        ),
        (
            "no verifier",
            &app,
            Some(APP_URI),
            None,
            "code_verifier is required",
        ),
        (
            "another redirect_uri",
            &app,
            Some("https://app.example/cb2"),
            Some("VERIFIER"),
            "redirect_uri",
        ),
        (
            "no redirect_uri",
            &app,
            None,
            Some("VERIFIER"),
            "redirect_uri",
        ),
        (
            "another client's code",
            &other,
            Some(APP_URI),
            Some("VERIFIER"),
            "another client",
        ),
    ];
    for (case, redeemer, redirect_uri, verifier, says) in cases {
        let (challenge, right) = pkce();
        let code = fresh_code(&flows, &agent, &app, &challenge).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        if let Some(uri) = redirect_uri {
            form.push(("redirect_uri", uri));
        }
        if let Some(verifier) = verifier {
            let verifier = if verifier == "VERIFIER" {
                &right
            } else {
                verifier
            };
            form.push(("code_verifier", verifier));
        }
        let answer = flows.token(redeemer, &form).await;
        assert_invalid_grant(&answer, says, case);
    }

    // A 43- and a 128-character verifier are fine.
    for length in [43, 128] {
        let verifier = "x".repeat(length);
        let code = fresh_code(&flows, &agent, &app, &challenge_of(&verifier)).await;
        flows.redeem(&app, &code, &verifier).await;
    }

    // Codes of a request without a challenge or a redirect_uri: a verifier
    // is refused, and so is a redirect_uri the client did not register.
    let no_challenge = authorize_path(&[
        ("response_type", "code"),
        ("client_id", &optional.id),
        ("scope", "read write"),
    ]);
    for (case, extra, says) in [
        (
            "a verifier, no challenge",
            ("code_verifier", "v".repeat(43)),
            "no code_challenge",
        ),
        (
            "an unregistered redirect_uri",
            ("redirect_uri", "https://evil.example/cb".to_owned()),
            "redirect_uri",
        ),
    ] {
        let code = code_of(&agent.get(&no_challenge).await, ISSUER);
        let answer = flows
            .token(
                &optional,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    (extra.0, &extra.1),
                ],
            )
            .await;
        assert_invalid_grant(&answer, says, case);
    }
    // Neither, where neither was sent: the code is good.
    let code = code_of(&agent.get(&no_challenge).await, ISSUER);
    let (status, body) = flows
        .token(
            &optional,
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A confidential client authenticates, as for any grant.
    let (challenge, verifier) = pkce();
    let code = fresh_code(&flows, &agent, &app, &challenge).await;
    let anonymous = TestClient {
        id: app.id.clone(),
        secret: None,
    };
    let (status, body) = flows
        .token(
            &anonymous,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", APP_URI),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");

    let unknown = flows
        .token(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", "oac_madeup"),
                ("redirect_uri", APP_URI),
                ("code_verifier", &"v".repeat(43)),
            ],
        )
        .await;
    assert_invalid_grant(&unknown, "invalid", "made-up code");
}
