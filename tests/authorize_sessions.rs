//! The pages and sessions of SPEC §7 against the real binary: CSRF on every
//! form, the cookies' attributes and a new session id at each login, the
//! security headers, `prompt=login`, remembered consent, whose session a
//! cookie is, logout and the commands that end sessions, login failures and
//! the lockout on the page, and `--template-dir`. The flows themselves are in
//! tests/authorize_flow.rs, their errors in tests/authorize_errors.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::flows::*;
use common::user_agent::{Page, UserAgent, redirect_params};
use common::*;

const PASSWORD: &str = "alice-pw-1";

/// A server, alice, and a code client that asks for consent.
struct Setup {
    flows: Flows,
    alice: String,
    app: TestClient,
}

impl Setup {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(args: &[&str]) -> Self {
        let flows = Flows::start_with(args);
        let alice = flows.user("alice", PASSWORD);
        let app = flows.client(APP_NAME, &[]);
        Self { flows, alice, app }
    }

    /// A code request for the app, with `extra`.
    fn request(&self, extra: &[(&str, &str)]) -> String {
        code_request(&self.app, &pkce().0, extra)
    }

    /// Logs `agent` in as alice through the login page; returns the page the
    /// request answers next.
    async fn log_in(&self, agent: &UserAgent) -> Page {
        let login = agent.get(&self.request(&[])).await;
        log_in(agent, &login, "alice", PASSWORD).await
    }

    /// What a `prompt=none` request answers for `agent`: the redirect's
    /// parameters, which show whether it has a session and consent without
    /// any page.
    async fn silently(&self, agent: &UserAgent) -> BTreeMap<String, String> {
        let page = agent.get(&self.request(&[("prompt", "none")])).await;
        assert_eq!(page.status, 302, "{}", page.body);
        redirect_params(page.location().unwrap(), APP_URI, false)
    }

    /// Asserts `agent` has a session whose user approved the app: a silent
    /// request gets a code.
    async fn assert_signed_in(&self, agent: &UserAgent, case: &str) {
        let params = self.silently(agent).await;
        assert!(params.contains_key("code"), "{case}: {params:?}");
    }

    /// Asserts `agent` has no session.
    async fn assert_signed_out(&self, agent: &UserAgent, case: &str) {
        let params = self.silently(agent).await;
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("login_required"),
            "{case}: {params:?}"
        );
    }

    fn sessions(&self) -> usize {
        let listed = cli(&self.flows.db.url, &["user", "sessions", "alice"]);
        listed.as_array().unwrap().len()
    }
}

/// A CSRF token of the right shape that is not the browser's.
const FORGED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Posts `page`'s form three ways a forger could: without the token, with a
/// forged one, and with the right one but no CSRF cookie. Each must get the
/// 400 page and set no cookie.
async fn assert_forgeries_refused(agent: &UserAgent, page: &Page, extra: &[(&str, &str)]) {
    let (action, hidden) = page.form();
    let cookie = agent.cookie("oauthd_csrf").expect("a CSRF cookie");
    let without: Vec<(String, String)> = hidden
        .iter()
        .filter(|(name, _)| name != "csrf_token")
        .cloned()
        .chain(
            extra
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        )
        .collect();
    let mut forged = without.clone();
    forged.push(("csrf_token".to_owned(), FORGED.to_owned()));
    let mut genuine = without.clone();
    genuine.push(("csrf_token".to_owned(), cookie.clone()));
    for (case, form, keep_cookie) in [
        ("no token", without, true),
        ("a forged token", forged, true),
        ("no cookie", genuine, false),
    ] {
        if !keep_cookie {
            agent.remove_cookie("oauthd_csrf");
        }
        let answer = agent.post(&action, &form).await;
        agent.set_cookie("oauthd_csrf", &cookie);
        assert_eq!(answer.status, 400, "{action}, {case}: {}", answer.body);
        assert_eq!(answer.location(), None, "{action}, {case}");
        assert!(answer.set_cookies().is_empty(), "{action}, {case}");
        assert!(
            answer.text().contains("did not come from this site"),
            "{action}, {case}: {}",
            answer.text()
        );
    }
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_get_400_and_change_nothing() {
    // Were a refused login counted, the second would lock alice.
    let s = Setup::with(&["--max-failed-logins", "2"]);
    let agent = s.flows.agent();

    let login = agent.get(&s.request(&[])).await;
    assert_login_page(&login);
    assert_forgeries_refused(
        &agent,
        &login,
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_forgeries_refused(
        &agent,
        &login,
        &[("username", "alice"), ("password", "wrong")],
    )
    .await;
    assert_eq!(agent.cookie("oauthd_session"), None);
    assert_eq!(s.sessions(), 0);

    let consent = log_in(&agent, &login, "alice", PASSWORD).await;
    assert_forgeries_refused(&agent, &consent, &[("decision", "allow")]).await;
    // Nothing was approved: the consent page again.
    let again = agent.get(&s.request(&[])).await;
    assert_consent_page(&again);

    let confirm = agent.get("/oauth/logout").await;
    assert_eq!(confirm.status, 200);
    assert_forgeries_refused(&agent, &confirm, &[]).await;
    assert!(agent.cookie("oauthd_session").is_some());
    assert_eq!(s.sessions(), 1);

    // The same forms with their token work.
    let allowed = decide(&agent, &again, "allow").await;
    code_of(&allowed, ISSUER);
    let signed_out = agent.submit(&confirm, &[]).await;
    assert_eq!(signed_out.status, 200);
    assert_eq!(s.sessions(), 0);
}

/// The attributes of a `Set-Cookie`, lowercased, without the value.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|attribute| attribute.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn cookies_are_http_only_lax_and_site_wide_and_secure_only_for_https() {
    let s = Setup::with(&["--session-ttl", "600"]);
    let agent = s.flows.agent();
    let login = agent.get(&s.request(&[])).await;
    let csrf = login.set_cookie("oauthd_csrf").expect("a CSRF cookie");
    let sent = agent
        .submit(&login, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(sent.status, 303);
    let session = sent.set_cookie("oauthd_session").expect("a session cookie");
    for cookie in [&session, &csrf] {
        let attributes = attributes(cookie);
        for wanted in ["httponly", "samesite=lax", "path=/"] {
            assert!(attributes.iter().any(|a| a == wanted), "{cookie}");
        }
        assert!(!attributes.iter().any(|a| a == "secure"), "{cookie}");
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain")),
            "{cookie}"
        );
    }
    let max_age: i64 = attributes(&session)
        .iter()
        .find_map(|a| a.strip_prefix("max-age="))
        .expect("a Max-Age")
        .parse()
        .unwrap();
    assert!((598..=600).contains(&max_age), "{session}");

    let secure = Setup::with(&["--issuer", "https://oauthd.example"]);
    let agent = secure.flows.agent();
    let login = agent.get(&secure.request(&[])).await;
    let sent = agent
        .submit(&login, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    for cookie in [
        login.set_cookie("oauthd_csrf").unwrap(),
        sent.set_cookie("oauthd_session").unwrap(),
    ] {
        let attributes = attributes(&cookie);
        for wanted in ["secure", "httponly", "samesite=lax", "path=/"] {
            assert!(attributes.iter().any(|a| a == wanted), "{cookie}");
        }
    }
}

#[tokio::test]
async fn each_login_starts_a_session_with_a_new_id() {
    let s = Setup::new();
    let agent = s.flows.agent();
    // A value planted before the login is never made the session's id.
    let planted = "p".repeat(43);
    agent.set_cookie("oauthd_session", &planted);
    let consent = s.log_in(&agent).await;
    let first = agent.cookie("oauthd_session").unwrap();
    assert_ne!(first, planted);
    assert_eq!(first.len(), 43);
    decide(&agent, &consent, "allow").await;

    let login = agent.get(&s.request(&[("prompt", "login")])).await;
    let after = log_in(&agent, &login, "alice", PASSWORD).await;
    let second = agent.cookie("oauthd_session").unwrap();
    assert_ne!(second, first);
    code_of(&after, ISSUER);
    // The login ended the session it replaced: a browser never holds two.
    assert_eq!(s.sessions(), 1);
    agent.set_cookie("oauthd_session", &first);
    s.assert_signed_out(&agent, "the replaced session").await;
}

#[tokio::test]
async fn a_session_ends_after_session_ttl() {
    // Two seconds, so that the session outlives the login's own redirects
    // whenever the clock's second turns.
    let s = Setup::with(&["--session-ttl", "2"]);
    let agent = s.flows.agent();
    let consent = s.log_in(&agent).await;
    decide(&agent, &consent, "allow").await;
    s.assert_signed_in(&agent, "within the session's ttl").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    s.assert_signed_out(&agent, "after the session's ttl").await;
    assert_eq!(s.sessions(), 0);
}

/// Asserts SPEC §7's headers on `page`.
fn assert_page_headers(page: &Page, case: &str) {
    assert_eq!(page.header("cache-control"), Some("no-store"), "{case}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"), "{case}");
    assert_eq!(
        page.header("referrer-policy"),
        Some("no-referrer"),
        "{case}"
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{case}: {csp}");
}

#[tokio::test]
async fn every_page_and_redirect_carries_the_security_headers() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let mut seen = Vec::new();
    let login = agent.get(&s.request(&[])).await;
    seen.push(("login page", login));
    let failed = agent
        .submit(&seen[0].1, &[("username", "alice"), ("password", "wrong")])
        .await;
    assert!(failed.text().contains("Bad credentials"));
    seen.push(("failed login", failed));
    let sent = agent
        .submit(&seen[0].1, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    let consent = agent.follow(&sent).await;
    assert_consent_page(&consent);
    seen.push(("login's redirect", sent));
    let allowed = decide(&agent, &consent, "allow").await;
    seen.push(("consent page", consent));
    seen.push(("consent's redirect", allowed));
    let code = agent.get(&s.request(&[])).await;
    assert_eq!(code.status, 302);
    seen.push(("redirect with a code", code));
    let error = agent.get(&s.request(&[("scope", "admin")])).await;
    seen.push(("error redirect", error));
    seen.push(("error page", agent.get("/oauth/authorize").await));
    let forged = agent
        .post("/oauth/logout", &[("csrf_token".into(), FORGED.into())])
        .await;
    seen.push(("CSRF refusal", forged));
    let confirm = agent.get("/oauth/logout").await;
    let signed_out = agent.submit(&confirm, &[]).await;
    seen.push(("logout confirmation", confirm));
    seen.push(("signed out", signed_out));
    for path in ["/oauth2/authorize", "/api/v1/oauth2/authorize"] {
        seen.push((path, agent.get(&format!("{path}?client_id=x")).await));
    }
    for (case, page) in &seen {
        assert_page_headers(page, case);
    }
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_even_with_a_session() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let consent = s.log_in(&agent).await;
    decide(&agent, &consent, "allow").await;
    s.assert_signed_in(&agent, "after logging in").await;

    let again = agent.get(&s.request(&[("prompt", "login")])).await;
    assert_login_page(&again);
    assert_eq!(again.hidden("prompt").as_deref(), Some("login"));
    let sent = agent
        .submit(&again, &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(sent.status, 303);
    // Logged in: the request goes on without asking again.
    let location = sent.location().unwrap();
    assert!(!location.contains("prompt"), "{location}");
    let after = agent.follow(&sent).await;
    code_of(&after, ISSUER);

    // With consent too, it asks for both.
    let both = agent.get(&s.request(&[("prompt", "login consent")])).await;
    let consent = log_in(&agent, &both, "alice", PASSWORD).await;
    assert_consent_page(&consent);
}

#[tokio::test]
async fn consent_is_remembered_until_revoked_and_asked_again_for_more() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let read_only = code_request(&s.app, &pkce().0, &[("scope", "read")]);
    let login = agent.get(&read_only).await;
    let consent = log_in(&agent, &login, "alice", PASSWORD).await;
    assert!(consent.body.contains("<li>read</li>"));
    assert!(!consent.body.contains("<li>write</li>"));
    code_of(&decide(&agent, &consent, "allow").await, ISSUER);

    // The same scope again: no page.
    let page = agent.get(&read_only).await;
    assert_eq!(page.status, 302);
    code_of(&page, ISSUER);
    // More than was approved: asked again, and then both are remembered.
    let wider = agent.get(&s.request(&[])).await;
    assert_consent_page(&wider);
    code_of(&decide(&agent, &wider, "allow").await, ISSUER);
    s.assert_signed_in(&agent, "read write approved").await;
    code_of(&agent.get(&read_only).await, ISSUER);

    // prompt=consent asks, whatever was approved.
    let asked = agent.get(&s.request(&[("prompt", "consent")])).await;
    assert_consent_page(&asked);

    // Another client is asked on its own.
    let other = s.flows.client("Other", &[]);
    let page = agent.get(&code_request(&other, &pkce().0, &[])).await;
    assert_consent_page(&page);
    code_of(&decide(&agent, &page, "allow").await, ISSUER);

    // revoke-consent for one client forgets only that one.
    let revoked = cli(
        &s.flows.db.url,
        &["user", "revoke-consent", "alice", "--client", &s.app.id],
    );
    assert_eq!(revoked["consents_revoked"], 1);
    let page = agent.get(&s.request(&[])).await;
    assert_consent_page(&page);
    let page = agent.get(&code_request(&other, &pkce().0, &[])).await;
    code_of(&page, ISSUER);
    // Without --client, every one.
    cli(&s.flows.db.url, &["user", "revoke-consent", "alice"]);
    let page = agent.get(&code_request(&other, &pkce().0, &[])).await;
    assert_consent_page(&page);
}

#[tokio::test]
async fn a_skip_consent_client_never_shows_the_consent_page() {
    let s = Setup::new();
    let first_party = s.flows.client("Console", &["--skip-consent"]);
    let agent = s.flows.agent();
    for prompt in ["", "consent"] {
        let request = code_request(&first_party, &pkce().0, &[("prompt", prompt)]);
        let page = agent.get(&request).await;
        let page = if page.status == 200 {
            log_in(&agent, &page, "alice", PASSWORD).await
        } else {
            page
        };
        assert_eq!(page.status, 302, "prompt={prompt}: {}", page.body);
        code_of(&page, ISSUER);
    }
    let silent = code_request(&first_party, &pkce().0, &[("prompt", "none")]);
    code_of(&agent.get(&silent).await, ISSUER);
}

#[tokio::test]
async fn a_made_up_session_cookie_is_no_session() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let consent = s.log_in(&agent).await;
    decide(&agent, &consent, "allow").await;
    let real = agent.cookie("oauthd_session").unwrap();
    let mut altered = real.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    for made_up in [
        String::from_utf8(altered).unwrap(),
        "x".to_owned(),
        format!("{real}x"),
        "../../etc/passwd".to_owned(),
    ] {
        agent.set_cookie("oauthd_session", &made_up);
        s.assert_signed_out(&agent, &made_up).await;
        assert_login_page(&agent.get(&s.request(&[])).await);
    }
    agent.set_cookie("oauthd_session", &real);
    s.assert_signed_in(&agent, "the real cookie").await;
}

#[tokio::test]
async fn another_users_session_cookie_acts_as_that_user() {
    let s = Setup::new();
    let bob = s.flows.user("bob", "bob-pw-1");
    let resource_server = create_client(&s.flows.db.url, &[]);
    let alices = s.flows.agent();
    let consent = s.log_in(&alices).await;
    decide(&alices, &consent, "allow").await;
    let bobs = s.flows.agent();
    let login = bobs.get(&s.request(&[])).await;
    log_in(&bobs, &login, "bob", "bob-pw-1").await;

    // Alice's browser, with bob's session cookie in place of hers.
    alices.set_cookie("oauthd_session", &bobs.cookie("oauthd_session").unwrap());
    let (challenge, verifier) = pkce();
    let consent = alices.get(&code_request(&s.app, &challenge, &[])).await;
    // Bob never approved the app: it asks, as bob.
    assert_consent_page(&consent);
    assert!(consent.text().contains("act for bob"), "{}", consent.text());
    let code = code_of(&decide(&alices, &consent, "allow").await, ISSUER);
    let tokens = s.flows.redeem(&s.app, &code, &verifier).await;
    let info = s
        .flows
        .introspect(&resource_server, tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["sub"], bob.as_str(), "{info}");
    assert_ne!(info["sub"], s.alice.as_str());
    assert_eq!(info["username"], "bob");
}

#[tokio::test]
async fn logout_asks_on_get_and_ends_the_session_on_post() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let consent = s.log_in(&agent).await;
    decide(&agent, &consent, "allow").await;
    let session = agent.cookie("oauthd_session").unwrap();

    let confirm = agent.get("/oauth/logout").await;
    assert_eq!(confirm.status, 200);
    let (action, _) = confirm.form();
    assert_eq!(action, "/oauth/logout");
    assert!(confirm.hidden("csrf_token").is_some());
    assert!(confirm.set_cookie("oauthd_session").is_none());
    // Asking ends nothing.
    s.assert_signed_in(&agent, "after GET /oauth/logout").await;
    // The command lists the session by its times, never its id.
    let listed = cli(&s.flows.db.url, &["user", "sessions", "alice"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let listed_session = &listed[0];
    assert!(listed_session["expires_at"].as_i64() > listed_session["created_at"].as_i64());
    assert!(!listed.to_string().contains(&session), "{listed}");

    let signed_out = agent.submit(&confirm, &[]).await;
    assert_eq!(signed_out.status, 200);
    let cleared = signed_out.set_cookie("oauthd_session").unwrap();
    assert!(cleared.starts_with("oauthd_session=;"), "{cleared}");
    assert!(attributes(&cleared).contains(&"max-age=0".to_owned()));
    assert_eq!(agent.cookie("oauthd_session"), None);
    assert_login_page(&agent.get(&s.request(&[])).await);
    assert_eq!(s.sessions(), 0);
    // Ended on the server, not only in the browser.
    agent.set_cookie("oauthd_session", &session);
    s.assert_signed_out(&agent, "the old cookie after logout")
        .await;
}

#[tokio::test]
async fn user_logout_lock_and_disable_end_the_users_sessions() {
    let s = Setup::new();
    let agent = s.flows.agent();
    let consent = s.log_in(&agent).await;
    decide(&agent, &consent, "allow").await;
    let other = s.flows.agent();
    s.log_in(&other).await;
    assert_eq!(s.sessions(), 2);
    let ended = cli(&s.flows.db.url, &["user", "logout", "alice"]);
    assert_eq!(ended["sessions_ended"], 2);
    assert_eq!(s.sessions(), 0);
    s.assert_signed_out(&agent, "after user logout").await;
    s.assert_signed_out(&other, "the other browser after user logout")
        .await;

    for (end, undo) in [("lock", "unlock"), ("disable", "enable")] {
        s.log_in(&agent).await;
        s.assert_signed_in(&agent, end).await;
        cli(&s.flows.db.url, &["user", end, "alice"]);
        s.assert_signed_out(&agent, end).await;
        assert_eq!(s.sessions(), 0, "{end}");
        cli(&s.flows.db.url, &["user", undo, "alice"]);
        // Undoing it brings no session back.
        s.assert_signed_out(&agent, undo).await;
    }
}

/// Logs in on a fresh login page; returns the page the attempt answered.
async fn attempt(s: &Setup, agent: &UserAgent, username: &str, password: &str) -> Page {
    let login = agent.get(&s.request(&[])).await;
    assert_login_page(&login);
    agent
        .submit(&login, &[("username", username), ("password", password)])
        .await
}

/// Asserts a failed login: the login page again, saying `says`, with no
/// session.
fn assert_failed(page: &Page, says: &str, case: &str) {
    assert_eq!(page.status, 200, "{case}: {}", page.body);
    assert_login_page(page);
    assert!(page.text().contains(says), "{case}: {}", page.text());
    assert!(page.set_cookie("oauthd_session").is_none(), "{case}");
}

#[tokio::test]
async fn login_failures_show_their_description_and_lock_the_user_after_max_failed_logins() {
    let s = Setup::with(&["--max-failed-logins", "3"]);
    // Alice's own browser, signed in, while someone else guesses.
    let alices = s.flows.agent();
    let consent = s.log_in(&alices).await;
    decide(&alices, &consent, "allow").await;
    let agent = s.flows.agent();
    for round in 1..=3 {
        let page = attempt(&s, &agent, "alice", "wrong-pw-9").await;
        assert_failed(&page, "Bad credentials", &format!("failure {round}"));
        // The login name stays filled in; the password is never sent back.
        let (username, _) = page.labelled_input("username").unwrap();
        assert!(username.contains("value=\"alice\""), "{username}");
        assert!(!page.body.contains("wrong-pw-9"));
    }
    let page = attempt(&s, &agent, "alice", PASSWORD).await;
    assert_failed(
        &page,
        "User is locked",
        "right password after three failures",
    );
    assert!(!page.text().contains("Bad credentials"));
    // Locked by the failures, alice's session is over too.
    s.assert_signed_out(&alices, "alice's browser once locked")
        .await;
    assert_eq!(s.sessions(), 0);
    let page = attempt(&s, &agent, "nobody", "wrong").await;
    assert_failed(&page, "Bad credentials", "unknown user");

    s.flows.user("dora", "dora-pw-1");
    cli(&s.flows.db.url, &["user", "disable", "dora"]);
    let page = attempt(&s, &agent, "dora", "dora-pw-1").await;
    assert_failed(&page, "User is disabled", "disabled");

    s.flows.user("erin", "erin-pw-1");
    cli(&s.flows.db.url, &["user", "expire-password", "erin"]);
    let page = attempt(&s, &agent, "erin", "erin-pw-1").await;
    assert_failed(&page, "Password has expired", "expired password");

    s.flows.user("fred", "fred-pw-1");
    cli(&s.flows.db.url, &["user", "lock", "fred"]);
    let page = attempt(&s, &agent, "fred", "fred-pw-1").await;
    assert_failed(&page, "User is locked", "locked by an admin");

    let page = attempt(&s, &agent, "", "x").await;
    assert_failed(
        &page,
        "An authorization username must be supplied.",
        "no username",
    );

    // The page and the password grant count towards one lockout.
    s.flows.user("gina", "gina-pw-1");
    let password_client = create_full_client(&s.flows.db.url);
    for _ in 0..2 {
        let (status, body) = s
            .flows
            .token(
                &password_client,
                &[
                    ("grant_type", "password"),
                    ("username", "gina"),
                    ("password", "wrong"),
                ],
            )
            .await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    let page = attempt(&s, &agent, "gina", "wrong").await;
    assert_failed(&page, "Bad credentials", "gina's third failure");
    let page = attempt(&s, &agent, "gina", "gina-pw-1").await;
    assert_failed(&page, "User is locked", "gina after failures on both");

    // Unlocked, alice logs in.
    cli(&s.flows.db.url, &["user", "unlock", "alice"]);
    let page = attempt(&s, &agent, "alice", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(s.sessions(), 1);
}

#[tokio::test]
async fn the_login_page_takes_an_email_or_a_phone_number_as_the_password_grant_does() {
    let s = Setup::new();
    create_user(
        &s.flows.db.url,
        "hana",
        "hana-pw-1",
        &["--email", "hana@example.com", "--phone", "+15550100"],
    );
    for login in ["hana@example.com", "+15550100"] {
        let agent = s.flows.agent();
        let page = agent.get(&s.request(&[])).await;
        let consent = log_in(&agent, &page, login, "hana-pw-1").await;
        assert!(consent.text().contains("act for hana"), "{login}");
    }
}

#[tokio::test]
async fn a_template_dir_replaces_the_login_page_and_leaves_the_others_built_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("login.html"),
        "{% extends \"base.html\" %}{% block content %}\
         <h1>Welcome to Acme</h1>{% if error %}<p>Acme says: {{ error }}</p>{% endif %}\
         <form method=\"post\" action=\"/oauth/login\">{% include \"_request.html\" %}\
         <label for=\"u\">Acme ID</label><input id=\"u\" name=\"username\">\
         <label for=\"p\">Acme password</label><input id=\"p\" name=\"password\" type=\"password\">\
         <button>Enter</button></form>{% endblock %}",
    )
    .unwrap();
    let s = Setup::with(&["--template-dir", dir.path().to_str().unwrap()]);
    let agent = s.flows.agent();
    let login = agent.get(&s.request(&[])).await;
    assert_login_page(&login);
    assert!(login.text().contains("Welcome to Acme"), "{}", login.body);
    assert!(!login.text().contains("Sign in"));
    assert_eq!(login.labelled_input("username").unwrap().1, "Acme ID");
    assert_page_headers(&login, "the replaced login page");

    let failed = agent
        .submit(&login, &[("username", "alice"), ("password", "wrong")])
        .await;
    assert!(failed.text().contains("Acme says: Bad credentials"));
    let consent = log_in(&agent, &login, "alice", PASSWORD).await;
    assert!(consent.text().contains("Allow access?"), "{}", consent.body);
    assert!(!consent.text().contains("Acme"));
    let error = agent.get("/oauth/authorize").await;
    assert_eq!(error.status, 400);
    assert!(error.text().contains("This request cannot go on"));
}

#[tokio::test]
async fn a_throttled_login_page_says_when_to_try_again() {
    // The address throttle of the password grant guards the page too: after
    // a failure, this address waits before its next password is checked.
    let s = Setup::with(&[
        "--login-throttle-max-failures",
        "10",
        "--login-throttle-backoff",
        "30",
    ]);
    let agent = s.flows.agent();
    let failed = attempt(&s, &agent, "alice", "wrong-pw-9").await;
    assert_failed(&failed, "Bad credentials", "first failure");
    let held = attempt(&s, &agent, "alice", PASSWORD).await;
    assert_eq!(held.status, 503, "{}", held.body);
    assert!(
        held.body.contains("action=\"/oauth/login\""),
        "{}",
        held.body
    );
    assert!(
        held.text().contains("Too many login attempts"),
        "{}",
        held.text()
    );
    let wait: u64 = held.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "Retry-After: {wait}");
    assert!(held.set_cookie("oauthd_session").is_none());
}
