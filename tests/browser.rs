//! The browser flows of SPEC §7 in headless Chromium, against the real binary:
//! a person types into oauthd's login form, clicks Allow on its consent page,
//! and lands on a redirect target the test serves. The code flow then redeems
//! its code with the PKCE verifier; the implicit flow finds its token in the
//! fragment.
//!
//! On the way, each flow takes screenshots of the pages it passes: the login
//! page, the same page after a failed login, and the consent page, on a
//! desktop (the code flow) and a phone (the implicit flow). They go to
//! `docs/screenshots/`, which the README shows, only when
//! `OAUTHD_WRITE_SCREENSHOTS=1`; otherwise to a temporary directory, so that
//! a test run never changes the tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::browser::{Browser, Viewport, fragment_params, query_params};
use common::upstream::Upstream;
use common::*;
use rand::Rng as _;
use serde_json::Value;

/// Not a default, so finding it in `iss` proves it came from this server. It
/// is `http`, as the test's server is: an `https` issuer would mark the
/// session cookie `Secure`.
const ISSUER: &str = "http://oauthd.browser-flows.test";

const PASSWORD: &str = "correct horse battery staple";

/// A `state` with characters that must be encoded on every hop: the hidden
/// fields of both forms, the redirect after login, and the one to the client.
const STATE: &str = "flow 1 & x=y/ü";

#[tokio::test]
async fn code_flow_with_pkce_logs_in_consents_and_redeems_the_code() {
    let demo = Demo::start();
    let shots = Screenshots::new();
    let browser = Browser::start().await;
    let verifier = code_verifier();

    browser
        .open(&demo.authorize_url(&[
            ("response_type", "code"),
            ("code_challenge", &s256(&verifier)),
            ("code_challenge_method", "S256"),
        ]))
        .await;
    log_in(&browser, &shots, Viewport::Desktop).await;
    allow(&browser, &shots, Viewport::Desktop).await;

    let landed = browser.wait_for_url(&demo.redirect_uri).await;
    assert!(
        demo.callback.served() >= 1,
        "the callback was not requested"
    );
    let answer = query_params(&landed);
    assert_eq!(answer["state"], STATE, "{landed}");
    assert_eq!(answer["iss"], ISSUER, "{landed}");
    assert!(answer["code"].starts_with("oac_"), "{landed}");
    assert!(!landed.contains('#'), "a code comes in the query: {landed}");

    let tokens = demo
        .redeem(&[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", &demo.redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &demo.client_id),
        ])
        .await;
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["scope"], "profile read write", "{tokens}");
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        tokens["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("ort_")),
        "{tokens}"
    );
}

#[tokio::test]
async fn implicit_flow_on_a_phone_puts_the_token_in_the_fragment() {
    let demo = Demo::start();
    let shots = Screenshots::new();
    let browser = Browser::start_with(Viewport::Phone).await;

    browser
        .open(&demo.authorize_url(&[("response_type", "token")]))
        .await;
    log_in(&browser, &shots, Viewport::Phone).await;
    allow(&browser, &shots, Viewport::Phone).await;

    let landed = browser.wait_for_url(&demo.redirect_uri).await;
    let answer = fragment_params(&landed);
    assert_eq!(answer["token_type"], "Bearer", "{landed}");
    assert_eq!(answer["state"], STATE, "{landed}");
    assert_eq!(answer["iss"], ISSUER, "{landed}");
    assert_eq!(answer["scope"], "profile read write", "{landed}");
    assert!(!answer["access_token"].is_empty(), "{landed}");
    assert!(answer["expires_in"].parse::<u64>().unwrap() > 0, "{landed}");
    assert!(
        !answer.contains_key("refresh_token"),
        "implicit never gives a refresh token: {landed}"
    );
    assert!(
        query_params(&landed).is_empty(),
        "a token comes in the fragment only: {landed}"
    );
}

/// A server with the client and the user of the README's example, and the
/// client's redirect target, which answers `200` to anything.
struct Demo {
    server: Server,
    callback: Upstream,
    client_id: String,
    redirect_uri: String,
    _db: TestDb,
}

impl Demo {
    fn start() -> Self {
        let db = TestDb::new();
        let callback = Upstream::start();
        let redirect_uri = format!("http://{}/cb", callback.addr);
        let client = cli(
            &db.url,
            &[
                "client",
                "create",
                "--name",
                "Demo App",
                "--grant-types",
                "authorization_code,refresh_token,implicit",
                "--scopes",
                "profile read write",
                "--public",
                "--redirect-uri",
                &redirect_uri,
            ],
        );
        create_user(&db.url, "alice", PASSWORD, &[]);
        let server = Server::start_with(&db, &["--issuer", ISSUER]);
        Self {
            server,
            callback,
            client_id: client["client_id"].as_str().unwrap().to_owned(),
            redirect_uri,
            _db: db,
        }
    }

    /// `/oauth/authorize` for the demo client, its redirect URI, every scope
    /// and [`STATE`], plus `extra`.
    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", "profile read write")
            .append_pair("state", STATE)
            .extend_pairs(extra)
            .finish();
        self.server.url(&format!("/oauth/authorize?{query}"))
    }

    /// A token request that must succeed, as the client's back end sends it.
    async fn redeem(&self, form: &[(&str, &str)]) -> Value {
        let response = reqwest::Client::new()
            .post(self.server.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// On the login page: a wrong password first, which the page must report,
/// then the right one.
async fn log_in(browser: &Browser, shots: &Screenshots, viewport: Viewport) {
    assert_eq!(browser.text_of("h1").await, "Sign in");
    assert!(browser.text().await.contains("Demo App"));
    shots.take(browser, viewport, "login").await;

    browser.fill("username", "alice").await;
    browser.fill("password", "not the password").await;
    browser.submit("button[type=submit]").await;
    assert_eq!(browser.text_of(".error").await, "Bad credentials");
    shots.take(browser, viewport, "login-error").await;

    // The page kept the username; typing it again replaces it.
    browser.fill("username", "alice").await;
    browser.fill("password", PASSWORD).await;
    browser.submit("button[type=submit]").await;
}

/// On the consent page, which names the client, the user and each scope:
/// Allow.
async fn allow(browser: &Browser, shots: &Screenshots, viewport: Viewport) {
    assert_eq!(browser.text_of("h1").await, "Allow access?");
    let text = browser.text().await;
    for expected in ["Demo App", "alice", "profile", "read", "write"] {
        assert!(text.contains(expected), "no {expected} on:\n{text}");
    }
    shots.take(browser, viewport, "consent").await;
    browser.submit("button[name=decision][value=allow]").await;
}

/// A fresh PKCE verifier: 64 characters of RFC 7636's unreserved set.
fn code_verifier() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`, computed here
/// rather than by oauthd's code.
fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Where screenshots go: `docs/screenshots/` with
/// `OAUTHD_WRITE_SCREENSHOTS=1`, else a temporary directory.
struct Screenshots {
    dir: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl Screenshots {
    fn new() -> Self {
        if std::env::var("OAUTHD_WRITE_SCREENSHOTS").as_deref() == Ok("1") {
            Self {
                dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
                _temporary: None,
            }
        } else {
            let temporary = tempfile::tempdir().unwrap();
            Self {
                dir: temporary.path().to_owned(),
                _temporary: Some(temporary),
            }
        }
    }

    /// `NAME.png` on a desktop, `NAME-phone.png` on a phone: a PNG exactly
    /// the viewport's size.
    async fn take(&self, browser: &Browser, viewport: Viewport, name: &str) {
        let (file, size) = match viewport {
            Viewport::Desktop => (format!("{name}.png"), (1280, 800)),
            Viewport::Phone => (format!("{name}-phone.png"), (780, 1688)),
        };
        let path = self.dir.join(file);
        browser.screenshot(&path).await;
        assert_eq!(png_size(&path), size, "{}", path.display());
    }
}

/// The width and height of a PNG file, which must be one: the signature, then
/// the IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "{} is not a PNG ({} bytes)",
        path.display(),
        png.len()
    );
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}
