//! Authorization codes for tests of the token side: minted through the real
//! login form and `/oauth/authorize`, for a client that skips consent.

use super::{Server, TestClient};

/// The PKCE verifier and S256 challenge of RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The redirect URI the code clients of these tests register.
pub const CODE_REDIRECT_URI: &str = "https://app.example/cb";

/// The arguments of `client create` for a confidential web client that uses
/// the code flow on [`CODE_REDIRECT_URI`] and never asks for consent.
pub const CODE_CLIENT_ARGS: [&str; 7] = [
    "--grant-types",
    "authorization_code,refresh_token",
    "--scopes",
    "read write",
    "--redirect-uri",
    CODE_REDIRECT_URI,
    "--skip-consent",
];

/// A logged-in browser: the session cookie of `username`.
pub async fn session_cookie(
    server: &Server,
    client: &TestClient,
    username: &str,
    password: &str,
) -> String {
    // The CSRF check is double-submit: the test picks the token it sends as
    // both cookie and field.
    let csrf = "c".repeat(43);
    let login = no_redirects()
        .post(server.url("/oauth/login"))
        .header("cookie", format!("oauthd_csrf={csrf}"))
        .form(
            &[
                &code_request(client)[..],
                &[
                    ("csrf_token", csrf.as_str()),
                    ("username", username),
                    ("password", password),
                ],
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "{}", server.log());
    login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .find(|value| value.starts_with("oauthd_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A fresh code for `client`, approved by the session `cookie`.
pub async fn mint_code(server: &Server, client: &TestClient, cookie: &str) -> String {
    let answer = no_redirects()
        .get(server.url("/oauth/authorize"))
        .query(&code_request(client))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302, "{}", server.log());
    let location = answer.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(CODE_REDIRECT_URI), "{location}");
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code")
}

fn code_request(client: &TestClient) -> [(&'static str, &str); 5] {
    [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", CODE_REDIRECT_URI),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
