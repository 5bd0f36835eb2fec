//! The browser flows of SPEC §7 as a test drives them: a server with a known
//! issuer, clients with a redirect URI, authorization requests, the login and
//! consent pages, and the token endpoint.

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use reqwest::StatusCode;
use serde_json::Value;

use std::collections::BTreeMap;

use super::user_agent::{Page, UserAgent, redirect_params};
use super::{Server, TestClient, TestDb, cli, create_user};

/// The issuer of an `http` deployment, named so that `iss` can be checked.
pub const ISSUER: &str = "http://oauthd.test";

/// The name of the client whose pages the tests read.
pub const APP_NAME: &str = "Photo Printer";

/// The redirect URI browser clients register.
pub const APP_URI: &str = "https://app.example/cb";

/// A database and a server with [`ISSUER`], unless `args` name another.
pub struct Flows {
    pub db: TestDb,
    pub server: Server,
    pub issuer: String,
}

impl Flows {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// `args` may name another `--issuer`.
    pub fn start_with(args: &[&str]) -> Self {
        let db = TestDb::new();
        let mut all = args.to_vec();
        if !args.contains(&"--issuer") {
            all.extend(["--issuer", ISSUER]);
        }
        let at = all.iter().position(|arg| *arg == "--issuer").unwrap();
        let issuer = all[at + 1].to_owned();
        let server = Server::start_with(&db, &all);
        Self { db, server, issuer }
    }

    /// A user; returns their id.
    pub fn user(&self, username: &str, password: &str) -> String {
        let created = create_user(&self.db.url, username, password, &[]);
        created["id"].as_str().unwrap().to_owned()
    }

    /// A client named `name` with `authorization_code` and `refresh_token`,
    /// scopes `read write` and [`APP_URI`]; `extra` adds or overrides.
    pub fn client(&self, name: &str, extra: &[&str]) -> TestClient {
        let mut args = vec!["client", "create", "--name", name, "--scopes", "read write"];
        if !extra.contains(&"--grant-types") {
            args.extend(["--grant-types", "authorization_code,refresh_token"]);
        }
        if !extra.contains(&"--redirect-uri") {
            args.extend(["--redirect-uri", APP_URI]);
        }
        args.extend_from_slice(extra);
        let created = cli(&self.db.url, &args);
        TestClient {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// A browser with no cookies.
    pub fn agent(&self) -> UserAgent {
        UserAgent::new(&self.server.url(""))
    }

    /// `POST /oauth/token` as `client`: Basic for a confidential client,
    /// `client_id` in the body for a public one.
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = reqwest::Client::new().post(self.server.url("/oauth/token"));
        match &client.secret {
            Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
            None => fields.push(("client_id", &client.id)),
        }
        let response = request.form(&fields).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Redeems `code` as `client` with the verifier, at [`APP_URI`]; the
    /// exchange must succeed.
    pub async fn redeem(&self, client: &TestClient, code: &str, verifier: &str) -> Value {
        let (status, body) = self
            .token(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", APP_URI),
                    ("code_verifier", verifier),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `POST /oauth/introspect` as `caller`, a confidential client.
    pub async fn introspect(&self, caller: &TestClient, token: &str) -> Value {
        reqwest::Client::new()
            .post(self.server.url("/oauth/introspect"))
            .basic_auth(&caller.id, caller.secret.as_ref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A fresh S256 challenge and its verifier.
pub fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_owned(), verifier.secret().clone())
}

/// The S256 challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()))
        .as_str()
        .to_owned()
}

/// `/oauth/authorize?` with `params` form-encoded.
pub fn authorize_path(params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{query}")
}

/// A code request for `client` at [`APP_URI`], scopes `read write`, with
/// `state` and the challenge; `extra` adds parameters or replaces them.
pub fn code_request(client: &TestClient, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", APP_URI),
        ("scope", "read write"),
        ("state", "af0ifjsldkj"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        match params.iter_mut().find(|(known, _)| known == name) {
            Some(param) => param.1 = value,
            None => params.push((name, value)),
        }
    }
    authorize_path(&params)
}

/// Asserts `page` is the login page.
pub fn assert_login_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("action=\"/oauth/login\""),
        "not the login page:\n{}",
        page.body
    );
}

/// Asserts `page` is the consent page.
pub fn assert_consent_page(page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("action=\"/oauth/consent\""),
        "not the consent page:\n{}",
        page.body
    );
}

/// Logs in on `login` (the login page) and follows the `303` back to the
/// request: returns what the request answers now.
pub async fn log_in(agent: &UserAgent, login: &Page, username: &str, password: &str) -> Page {
    assert_login_page(login);
    let sent = agent
        .submit(login, &[("username", username), ("password", password)])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(sent.set_cookie("oauthd_session").is_some());
    agent.follow(&sent).await
}

/// Presses allow or deny on the consent page; returns the `303`.
pub async fn decide(agent: &UserAgent, consent: &Page, decision: &str) -> Page {
    assert_consent_page(consent);
    let sent = agent.submit(consent, &[("decision", decision)]).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    sent
}

/// Opens `request`, logs in as `username` and allows: returns the redirect
/// to the client.
pub async fn log_in_and_allow(
    agent: &UserAgent,
    request: &str,
    username: &str,
    password: &str,
) -> Page {
    let login = agent.get(request).await;
    let consent = log_in(agent, &login, username, password).await;
    decide(agent, &consent, "allow").await
}

/// The code a redirect to [`APP_URI`] carries, after checking `state` and
/// `iss`.
pub fn code_of(redirect: &Page, issuer: &str) -> String {
    let params = redirect_params(redirect.location().unwrap(), APP_URI, false);
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer));
    assert!(!params.contains_key("error"), "{params:?}");
    let code = params["code"].clone();
    assert!(code.starts_with("oac_"), "{code}");
    code
}

/// Asserts the page of SPEC §7 for a request that cannot go back to a client:
/// `400`, HTML that says why, and no redirect.
pub fn assert_error_page(page: &Page, says: &str, case: &str) {
    assert_eq!(page.status, 400, "{case}: {}", page.body);
    assert_eq!(page.location(), None, "{case}");
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{case}"
    );
    assert!(page.text().contains(says), "{case}: {}", page.text());
}

/// An error redirect's parameters, checked: a `302` to `redirect_uri` with
/// `error`, `error_description` and `iss`, nothing issued.
pub fn error_redirect(
    page: &Page,
    redirect_uri: &str,
    in_fragment: bool,
    case: &str,
) -> BTreeMap<String, String> {
    assert_eq!(page.status, 302, "{case}: {}", page.body);
    let params = redirect_params(page.location().unwrap(), redirect_uri, in_fragment);
    assert_eq!(
        params.get("iss").map(String::as_str),
        Some(ISSUER),
        "{case}"
    );
    assert!(params.contains_key("error_description"), "{case}");
    for issued in ["code", "access_token"] {
        assert!(!params.contains_key(issued), "{case}: {params:?}");
    }
    params
}
