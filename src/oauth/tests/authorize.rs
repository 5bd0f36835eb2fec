//! The authorization endpoint's decisions (SPEC §7, `oauth/authorize.rs`):
//! which errors are oauthd's own page and which go back to the client, the
//! parameters, PKCE, `prompt`, login and consent, loopback redirect URIs, the
//! implicit answer, and the login sessions behind them.

use super::*;
use crate::oauth::authorize::{MAX_STATE_BYTES, ValidRequest};
use crate::oauth::error::AuthorizePageError;

/// A confidential client `web` on [`REDIRECT`] that must use PKCE and asks
/// for consent, and a user `ann`, logged in: her session cookie.
async fn web_and_ann(core: &TestCore) -> (String, User) {
    redirecting_client(core, "web", false, &[REDIRECT], false, PkceRule::Required);
    let ann = user(core, "ann");
    (session_of(core, &ann, T0).await, ann)
}

fn page(outcome: Outcome) -> AuthorizePageError {
    match outcome {
        Outcome::Page(error) => error,
        other => panic!("expected the error page, got {other:?}"),
    }
}

fn login_page(outcome: Outcome) -> ValidRequest {
    match outcome {
        Outcome::Login(request) => *request,
        other => panic!("expected the login page, got {other:?}"),
    }
}

fn consent_page(outcome: Outcome) -> (ValidRequest, User) {
    match outcome {
        Outcome::Consent(request, user) => (*request, *user),
        other => panic!("expected the consent page, got {other:?}"),
    }
}

/// The `error` and `error_description` of a redirect.
fn error_of(redirect: &Redirect) -> (&str, &str) {
    (
        param(redirect, "error").expect("an error redirect"),
        param(redirect, "error_description").expect("a description"),
    )
}

/// The names of a redirect's parameters, in order.
fn names(redirect: &Redirect) -> Vec<&'static str> {
    redirect.params.iter().map(|(name, _)| *name).collect()
}

// --- Errors that are oauthd's own page, never a redirect -------------------

#[tokio::test]
async fn a_missing_repeated_unknown_or_disabled_client_id_is_a_page() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let cases = [
        (
            AuthRequest::code("web").without("client_id"),
            AuthorizePageError::MissingClientId,
        ),
        (AuthRequest::code(""), AuthorizePageError::MissingClientId),
        (
            AuthRequest::code("web").again("client_id", "web"),
            AuthorizePageError::MalformedClientId,
        ),
        (
            AuthRequest::code("web").again("client_id", "other"),
            AuthorizePageError::MalformedClientId,
        ),
        (
            AuthRequest::code("web").undecodable("client_id"),
            AuthorizePageError::MalformedClientId,
        ),
        (
            AuthRequest::code("nobody"),
            AuthorizePageError::UnknownClient,
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            page(ask(&core, &request, None, T0).await),
            expected,
            "{request:?}"
        );
    }
    change_client(&core, "web", |client| client.enabled = false);
    assert_eq!(
        page(ask(&core, &AuthRequest::code("web"), None, T0).await),
        AuthorizePageError::UnknownClient
    );
}

#[tokio::test]
async fn a_missing_repeated_undecodable_or_unregistered_redirect_uri_is_a_page() {
    let core = jwt_core();
    let other = "https://app.example/other";
    redirecting_client(
        &core,
        "web",
        false,
        &[REDIRECT, other],
        false,
        PkceRule::Required,
    );
    let cases = [
        (
            AuthRequest::code("web").without("redirect_uri"),
            AuthorizePageError::MissingRedirectUri,
        ),
        (
            AuthRequest::code("web").again("redirect_uri", REDIRECT),
            AuthorizePageError::MalformedRedirectUri,
        ),
        (
            AuthRequest::code("web").again("redirect_uri", other),
            AuthorizePageError::MalformedRedirectUri,
        ),
        (
            AuthRequest::code("web").undecodable("redirect_uri"),
            AuthorizePageError::MalformedRedirectUri,
        ),
        (
            AuthRequest::code("web").set("redirect_uri", "https://evil.example/cb"),
            AuthorizePageError::UnregisteredRedirectUri,
        ),
        (
            AuthRequest::code("web").set("redirect_uri", "javascript:alert(document.cookie)"),
            AuthorizePageError::UnregisteredRedirectUri,
        ),
        (
            AuthRequest::code("web").set("redirect_uri", "https://app.example/cb#frag"),
            AuthorizePageError::UnregisteredRedirectUri,
        ),
        (
            AuthRequest::code("web").set("redirect_uri", "https://app.example/cb/"),
            AuthorizePageError::UnregisteredRedirectUri,
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            page(ask(&core, &request, None, T0).await),
            expected,
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn a_client_without_redirect_uris_gets_a_page() {
    let core = jwt_core();
    redirecting_client(&core, "web", false, &[], false, PkceRule::Required);
    let request = AuthRequest::code("web").without("redirect_uri");
    assert_eq!(
        page(ask(&core, &request, None, T0).await),
        AuthorizePageError::UnregisteredRedirectUri
    );
}

#[tokio::test]
async fn the_page_wins_over_every_other_error_in_the_request() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let broken = |request: AuthRequest| {
        request
            .set("response_type", "nonsense")
            .set("scope", "admin")
            .set("code_challenge_method", "plain")
            .again("state", "twice")
    };
    let request = broken(AuthRequest::code("web").set("redirect_uri", "https://evil.example/"));
    assert_eq!(
        page(ask(&core, &request, None, T0).await),
        AuthorizePageError::UnregisteredRedirectUri
    );
    let request = broken(AuthRequest::code("nobody"));
    assert_eq!(
        page(ask(&core, &request, None, T0).await),
        AuthorizePageError::UnknownClient
    );
}

#[tokio::test]
async fn a_database_that_does_not_answer_is_a_page_before_the_client_is_known() {
    let core = jwt_core();
    web_and_ann(&core).await;
    core.store.set_down(true);
    let outcome = ask(&core, &AuthRequest::code("web"), None, T0).await;
    assert_eq!(page(outcome), AuthorizePageError::Unavailable);
}

#[tokio::test]
async fn the_only_registered_redirect_uri_may_be_left_out() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::code("web").without("redirect_uri");
    let valid = login_page(ask(&core, &request, None, T0).await);
    assert_eq!(valid.redirect_uri, REDIRECT);
    // And errors then go there.
    let request = request.set("scope", "admin");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(refused.uri, REDIRECT);
    assert_eq!(error_of(&refused).0, "invalid_scope");
}

// --- Errors that go back to the client -------------------------------------

#[tokio::test]
async fn errors_of_a_code_request_go_back_in_the_query_with_state_and_iss() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::code("web").set("scope", "read admin");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert!(!refused.in_fragment);
    assert_eq!(refused.uri, REDIRECT);
    assert_eq!(
        names(&refused),
        ["error", "error_description", "state", "iss"]
    );
    assert_eq!(
        error_of(&refused),
        ("invalid_scope", "Scope not allowed for this client: admin")
    );
    assert_eq!(param(&refused, "state"), Some("xyz"));
    assert_eq!(param(&refused, "iss"), Some("https://auth.test"));
    assert_eq!(
        refused.location(),
        "https://app.example/cb?error=invalid_scope\
         &error_description=Scope+not+allowed+for+this+client%3A+admin\
         &state=xyz&iss=https%3A%2F%2Fauth.test"
    );
}

#[tokio::test]
async fn errors_of_a_token_request_go_back_in_the_fragment() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::token("web").set("scope", "admin");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert!(refused.in_fragment);
    assert_eq!(
        names(&refused),
        ["error", "error_description", "state", "iss"]
    );
    assert_eq!(error_of(&refused).0, "invalid_scope");
    assert_eq!(
        refused.location(),
        "https://app.example/cb#error=invalid_scope\
         &error_description=Scope+not+allowed+for+this+client%3A+admin\
         &state=xyz&iss=https%3A%2F%2Fauth.test"
    );
}

#[tokio::test]
async fn a_registered_uri_with_a_query_keeps_it() {
    let core = jwt_core();
    let with_query = "https://app.example/cb?tenant=7";
    redirecting_client(&core, "web", false, &[with_query], true, PkceRule::Required);
    let ann = user(&core, "ann");
    let session = session_of(&core, &ann, T0).await;

    let request = AuthRequest::code("web").set("redirect_uri", with_query);
    let refused = redirect(ask(&core, &request.clone().set("scope", "admin"), None, T0).await);
    assert!(
        refused
            .location()
            .starts_with("https://app.example/cb?tenant=7&error=invalid_scope&"),
        "{}",
        refused.location()
    );
    let issued = redirect(ask(&core, &request, Some(&session), T0).await);
    let code = param(&issued, "code").unwrap();
    assert_eq!(
        issued.location(),
        format!(
            "https://app.example/cb?tenant=7&code={code}&state=xyz&iss=https%3A%2F%2Fauth.test"
        )
    );

    // The fragment follows the registered query.
    let request = AuthRequest::token("web").set("redirect_uri", with_query);
    let refused = redirect(ask(&core, &request.set("scope", "admin"), None, T0).await);
    assert!(
        refused
            .location()
            .starts_with("https://app.example/cb?tenant=7#error=invalid_scope&"),
        "{}",
        refused.location()
    );
}

#[tokio::test]
async fn state_is_echoed_only_when_sent() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::code("web")
        .without("state")
        .set("scope", "admin");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(names(&refused), ["error", "error_description", "iss"]);
}

// --- invalid_request -------------------------------------------------------

#[tokio::test]
async fn a_repeated_parameter_is_invalid_request() {
    let core = jwt_core();
    web_and_ann(&core).await;
    for name in [
        "response_type",
        "scope",
        "code_challenge",
        "code_challenge_method",
        "prompt",
    ] {
        let request = AuthRequest::code("web")
            .set("prompt", "login")
            .again(name, "x");
        let refused = redirect(ask(&core, &request, None, T0).await);
        assert_eq!(
            error_of(&refused),
            (
                "invalid_request",
                format!("Parameter given more than once: {name}").as_str()
            )
        );
        assert_eq!(param(&refused, "state"), Some("xyz"), "{name}");
    }
    // A repeated state is not echoed: which one would it be?
    let request = AuthRequest::code("web").again("state", "abc");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(
        error_of(&refused),
        ("invalid_request", "Parameter given more than once: state")
    );
    assert_eq!(param(&refused, "state"), None);
}

#[tokio::test]
async fn an_undecodable_parameter_is_invalid_request() {
    let core = jwt_core();
    web_and_ann(&core).await;
    for name in ["response_type", "scope", "code_challenge", "prompt"] {
        let request = AuthRequest::code("web").undecodable(name);
        let refused = redirect(ask(&core, &request, None, T0).await);
        assert_eq!(
            error_of(&refused),
            (
                "invalid_request",
                format!("Malformed parameter: {name}").as_str()
            )
        );
    }
}

#[tokio::test]
async fn a_missing_response_type_is_invalid_request() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::code("web").without("response_type");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert!(!refused.in_fragment);
    assert_eq!(
        error_of(&refused),
        (
            "invalid_request",
            "Missing required parameter: response_type"
        )
    );
}

#[tokio::test]
async fn a_state_over_the_limit_is_refused_and_not_echoed() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let long = "s".repeat(10 * 1024);
    let refused = redirect(
        ask(
            &core,
            &AuthRequest::code("web").set("state", &long),
            None,
            T0,
        )
        .await,
    );
    assert_eq!(
        error_of(&refused),
        ("invalid_request", "state is longer than 4096 bytes")
    );
    assert_eq!(param(&refused, "state"), None);
    assert!(!refused.location().contains("sss"));
    // At the limit it is carried through.
    let longest = "s".repeat(MAX_STATE_BYTES);
    let valid = login_page(
        ask(
            &core,
            &AuthRequest::code("web").set("state", &longest),
            None,
            T0,
        )
        .await,
    );
    assert_eq!(valid.state.as_deref(), Some(longest.as_str()));
}

#[tokio::test]
async fn pkce_is_s256_with_a_well_formed_challenge() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let plain = "code_challenge_method must be S256; plain is not supported";
    let malformed = "code_challenge must be 43 characters of base64url (S256)";
    let cases = [
        (
            AuthRequest::code("web").set("code_challenge_method", "plain"),
            plain,
        ),
        (
            AuthRequest::code("web").set("code_challenge_method", "s256"),
            plain,
        ),
        // RFC 7636 §4.3: no method means plain.
        (
            AuthRequest::code("web").without("code_challenge_method"),
            plain,
        ),
        (
            AuthRequest::code("web").set("code_challenge", &CHALLENGE[1..]),
            malformed,
        ),
        (
            AuthRequest::code("web").set("code_challenge", &format!("{}=", &CHALLENGE[1..])),
            malformed,
        ),
        (
            AuthRequest::code("web").set("code_challenge", &format!("{CHALLENGE}A")),
            malformed,
        ),
        (
            AuthRequest::code("web").without("code_challenge"),
            "Missing required parameter: code_challenge",
        ),
    ];
    for (request, description) in cases {
        let refused = redirect(ask(&core, &request, None, T0).await);
        assert_eq!(
            error_of(&refused),
            ("invalid_request", description),
            "{request:?}"
        );
    }
}

#[tokio::test]
async fn pkce_is_required_of_public_clients_and_of_confidential_ones_by_default() {
    let core = jwt_core();
    redirecting_client(&core, "app", true, &[REDIRECT], false, PkceRule::Required);
    redirecting_client(&core, "web", false, &[REDIRECT], false, PkceRule::Required);
    for client_id in ["app", "web"] {
        let request = AuthRequest::code(client_id)
            .without("code_challenge")
            .without("code_challenge_method");
        let refused = redirect(ask(&core, &request, None, T0).await);
        assert_eq!(
            error_of(&refused),
            (
                "invalid_request",
                "code_challenge is required (PKCE with S256)"
            ),
            "{client_id}"
        );
    }
    // A public client stays bound to PKCE whatever its stored rule says.
    change_client(&core, "app", |client| client.pkce = PkceRule::Optional);
    let request = AuthRequest::code("app")
        .without("code_challenge")
        .without("code_challenge_method");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(error_of(&refused).0, "invalid_request");
}

#[tokio::test]
async fn a_confidential_client_with_optional_pkce_may_leave_it_out() {
    let core = jwt_core();
    redirecting_client(&core, "web", false, &[REDIRECT], false, PkceRule::Optional);
    let request = AuthRequest::code("web")
        .without("code_challenge")
        .without("code_challenge_method");
    login_page(ask(&core, &request, None, T0).await);
    // But what it sends must still be S256.
    let request = request
        .set("code_challenge", CHALLENGE)
        .set("code_challenge_method", "plain");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(error_of(&refused).0, "invalid_request");
}

#[tokio::test]
async fn an_unknown_response_type_is_unsupported_response_type() {
    let core = jwt_core();
    web_and_ann(&core).await;
    for response_type in ["id_token", "code token", "CODE"] {
        let request = AuthRequest::code("web").set("response_type", response_type);
        let refused = redirect(ask(&core, &request, None, T0).await);
        assert!(!refused.in_fragment);
        assert_eq!(
            error_of(&refused),
            (
                "unsupported_response_type",
                format!("Unsupported response type: {response_type}").as_str()
            )
        );
    }
}

#[tokio::test]
async fn a_response_type_needs_its_grant() {
    let core = jwt_core();
    web_and_ann(&core).await;
    change_client(&core, "web", |client| {
        client.grant_types = vec![GrantType::AuthorizationCode];
    });
    let refused = redirect(ask(&core, &AuthRequest::token("web"), None, T0).await);
    assert!(refused.in_fragment);
    assert_eq!(
        error_of(&refused),
        (
            "unauthorized_client",
            "The client is not allowed to use the response type token"
        )
    );
    change_client(&core, "web", |client| {
        client.grant_types = vec![GrantType::Implicit];
    });
    let refused = redirect(ask(&core, &AuthRequest::code("web"), None, T0).await);
    assert!(!refused.in_fragment);
    assert_eq!(
        error_of(&refused),
        (
            "unauthorized_client",
            "The client is not allowed to use the response type code"
        )
    );
}

#[tokio::test]
async fn a_scope_the_client_may_not_have_is_invalid_scope() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let refused = redirect(
        ask(
            &core,
            &AuthRequest::code("web").set("scope", "read admin"),
            None,
            T0,
        )
        .await,
    );
    assert_eq!(
        error_of(&refused),
        ("invalid_scope", "Scope not allowed for this client: admin")
    );
    let refused = redirect(
        ask(
            &core,
            &AuthRequest::code("web").set("scope", "re\"ad"),
            None,
            T0,
        )
        .await,
    );
    assert_eq!(error_of(&refused).0, "invalid_scope");
    // No scope asks for everything the client may have.
    let valid = login_page(ask(&core, &AuthRequest::code("web").without("scope"), None, T0).await);
    assert_eq!(valid.scope.to_string(), "read write");
}

// --- prompt ------------------------------------------------------------------

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let request = AuthRequest::code("web").set("prompt", "none");
    let refused = redirect(ask(&core, &request, None, T0).await);
    assert_eq!(
        error_of(&refused),
        ("login_required", "The user must log in")
    );
    assert_eq!(param(&refused, "state"), Some("xyz"));
    let refused = redirect(
        ask(
            &core,
            &AuthRequest::token("web").set("prompt", "none"),
            None,
            T0,
        )
        .await,
    );
    assert!(refused.in_fragment);
    assert_eq!(error_of(&refused).0, "login_required");
}

#[tokio::test]
async fn prompt_none_with_a_session_but_no_consent_is_consent_required() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    let request = AuthRequest::code("web").set("prompt", "none");
    let refused = redirect(ask(&core, &request, Some(&session), T0).await);
    assert_eq!(
        error_of(&refused),
        (
            "consent_required",
            "The user must approve the requested scopes"
        )
    );
    // Once approved, prompt=none gets its code without a page.
    let approve = AuthRequest::code("web");
    redirect(answer(&core, &approve, Some(&session), Decision::Allow, T0).await);
    let issued = redirect(ask(&core, &request, Some(&session), T0 + 1).await);
    assert!(param(&issued, "code").is_some());
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_despite_a_session() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    let request = AuthRequest::code("web").set("prompt", "login");
    login_page(ask(&core, &request, Some(&session), T0).await);
}

#[tokio::test]
async fn after_login_drops_login_from_prompt_and_nothing_else() {
    // `prompt` first, so that its place is seen to be kept.
    let prompt = ("prompt".to_owned(), Some("login consent".to_owned()));
    let request = AuthRequest(
        std::iter::once(prompt)
            .chain(AuthRequest::code("web").0)
            .collect(),
    );
    let params = request.params();
    let after = params.after_login();
    let mut expected: Vec<(&str, &str)> = params.entries().collect();
    expected[0] = ("prompt", "consent");
    assert_eq!(after.entries().collect::<Vec<_>>(), expected);

    let only_login = AuthRequest::code("web").set("prompt", "login");
    let after = only_login.params().after_login();
    assert!(after.entries().all(|(name, _)| name != "prompt"));
    assert_eq!(
        after.entries().count(),
        only_login.params().entries().count() - 1
    );

    // And the request it leaves goes on past the login page.
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    consent_page(ask_with(&core, &after, Some(&session), T0).await);
}

#[tokio::test]
async fn an_unknown_or_contradictory_prompt_is_invalid_request() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    for prompt in ["select_account", "none login", "consent none", "Login"] {
        let request = AuthRequest::code("web").set("prompt", prompt);
        let refused = redirect(ask(&core, &request, Some(&session), T0).await);
        assert_eq!(
            error_of(&refused),
            (
                "invalid_request",
                "prompt must be none, or any of login and consent"
            ),
            "{prompt}"
        );
    }
}

// --- Login and consent ---------------------------------------------------------

#[tokio::test]
async fn without_a_session_the_request_goes_to_the_login_page() {
    let core = jwt_core();
    web_and_ann(&core).await;
    let valid = login_page(ask(&core, &AuthRequest::code("web"), None, T0).await);
    assert_eq!(valid.client.id, "web");
    assert_eq!(valid.redirect_uri, REDIRECT);
    assert_eq!(valid.scope.to_string(), "read");
    assert_eq!(valid.state.as_deref(), Some("xyz"));
    // A cookie that names no session is no session.
    let forged = "A".repeat(43);
    login_page(ask(&core, &AuthRequest::code("web"), Some(&forged), T0).await);
}

#[tokio::test]
async fn with_a_session_the_user_is_asked_to_consent() {
    let core = jwt_core();
    let (session, ann) = web_and_ann(&core).await;
    let request = AuthRequest::code("web").set("scope", "read write");
    let (valid, asked) = consent_page(ask(&core, &request, Some(&session), T0).await);
    assert_eq!(asked.id, ann.id);
    assert_eq!(valid.client.id, "web");
    assert_eq!(valid.scope.to_string(), "read write");
}

#[tokio::test]
async fn allowing_redirects_with_a_code_and_remembers_the_consent() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    let request = AuthRequest::code("web");
    let issued = redirect(answer(&core, &request, Some(&session), Decision::Allow, T0).await);
    assert!(!issued.in_fragment);
    assert_eq!(issued.uri, REDIRECT);
    assert_eq!(names(&issued), ["code", "state", "iss"]);
    let code = param(&issued, "code").unwrap();
    assert!(code.starts_with("oac_"), "{code}");
    assert_eq!(
        issued.location(),
        format!("{REDIRECT}?code={code}&state=xyz&iss=https%3A%2F%2Fauth.test")
    );
    // The next request for the same scopes is answered at once, with a new code.
    let again = redirect(ask(&core, &request, Some(&session), T0 + 5).await);
    let second = param(&again, "code").unwrap();
    assert!(second.starts_with("oac_"));
    assert_ne!(second, code);
}

#[tokio::test]
async fn a_wider_scope_asks_again_and_the_approvals_add_up() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    let read = AuthRequest::code("web").set("scope", "read");
    redirect(answer(&core, &read, Some(&session), Decision::Allow, T0).await);
    let both = AuthRequest::code("web").set("scope", "read write");
    consent_page(ask(&core, &both, Some(&session), T0).await);
    let write = AuthRequest::code("web").set("scope", "write");
    redirect(answer(&core, &write, Some(&session), Decision::Allow, T0).await);
    // `read` then `write` approved: `read write` needs no page now.
    let issued = redirect(ask(&core, &both, Some(&session), T0).await);
    assert!(param(&issued, "code").is_some());
}

#[tokio::test]
async fn consent_is_remembered_per_user_and_client() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    redirecting_client(
        &core,
        "other",
        false,
        &[REDIRECT],
        false,
        PkceRule::Required,
    );
    let bob = user(&core, "bob");
    let bobs = session_of(&core, &bob, T0).await;
    redirect(
        answer(
            &core,
            &AuthRequest::code("web"),
            Some(&session),
            Decision::Allow,
            T0,
        )
        .await,
    );
    consent_page(ask(&core, &AuthRequest::code("other"), Some(&session), T0).await);
    consent_page(ask(&core, &AuthRequest::code("web"), Some(&bobs), T0).await);
}

#[tokio::test]
async fn a_client_that_skips_consent_never_asks() {
    let core = jwt_core();
    redirecting_client(&core, "web", false, &[REDIRECT], true, PkceRule::Required);
    let ann = user(&core, "ann");
    let session = session_of(&core, &ann, T0).await;
    for request in [
        AuthRequest::code("web"),
        AuthRequest::code("web").set("prompt", "consent"),
        AuthRequest::code("web").set("prompt", "none"),
    ] {
        let issued = redirect(ask(&core, &request, Some(&session), T0).await);
        assert!(param(&issued, "code").is_some(), "{request:?}");
    }
}

#[tokio::test]
async fn denying_is_access_denied_and_remembers_nothing() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    let request = AuthRequest::code("web");
    let refused = redirect(answer(&core, &request, Some(&session), Decision::Deny, T0).await);
    assert_eq!(
        names(&refused),
        ["error", "error_description", "state", "iss"]
    );
    assert_eq!(
        error_of(&refused),
        ("access_denied", "The user denied the request")
    );
    consent_page(ask(&core, &request, Some(&session), T0).await);
    let refused = redirect(
        answer(
            &core,
            &AuthRequest::token("web"),
            Some(&session),
            Decision::Deny,
            T0,
        )
        .await,
    );
    assert!(refused.in_fragment);
    assert_eq!(error_of(&refused).0, "access_denied");
}

#[tokio::test]
async fn prompt_consent_asks_even_when_remembered() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    redirect(
        answer(
            &core,
            &AuthRequest::code("web"),
            Some(&session),
            Decision::Allow,
            T0,
        )
        .await,
    );
    let request = AuthRequest::code("web").set("prompt", "consent");
    consent_page(ask(&core, &request, Some(&session), T0).await);
}

#[tokio::test]
async fn a_consent_form_gets_no_further_than_its_request() {
    let core = jwt_core();
    let (session, _) = web_and_ann(&core).await;
    // Without a session, the form leads to the login page.
    login_page(answer(&core, &AuthRequest::code("web"), None, Decision::Allow, T0).await);
    // A request that was never valid is refused as the endpoint refuses it.
    let forged = AuthRequest::code("web").set("redirect_uri", "https://evil.example/cb");
    assert_eq!(
        page(answer(&core, &forged, Some(&session), Decision::Allow, T0).await),
        AuthorizePageError::UnregisteredRedirectUri
    );
    let forged = AuthRequest::code("web").set("scope", "admin");
    let refused = redirect(answer(&core, &forged, Some(&session), Decision::Allow, T0).await);
    assert_eq!(error_of(&refused).0, "invalid_scope");
    let forged = AuthRequest::code("web").without("code_challenge");
    let refused = redirect(answer(&core, &forged, Some(&session), Decision::Allow, T0).await);
    assert_eq!(error_of(&refused).0, "invalid_request");
    // None of them was remembered.
    consent_page(ask(&core, &AuthRequest::code("web"), Some(&session), T0).await);
}

// --- Loopback redirect URIs (RFC 8252 §7.3) ------------------------------------

#[tokio::test]
async fn a_public_clients_loopback_uri_matches_the_port_given() {
    let core = jwt_core();
    redirecting_client(
        &core,
        "cli",
        true,
        &["http://127.0.0.1/cb"],
        false,
        PkceRule::Required,
    );
    let ann = user(&core, "ann");
    let session = session_of(&core, &ann, T0).await;
    let on_port = "http://127.0.0.1:51234/cb";
    let request = AuthRequest::code("cli").set("redirect_uri", on_port);
    let issued = redirect(answer(&core, &request, Some(&session), Decision::Allow, T0).await);
    assert_eq!(issued.uri, on_port);
    assert!(
        issued
            .location()
            .starts_with("http://127.0.0.1:51234/cb?code=oac_"),
        "{}",
        issued.location()
    );
    // Another path or host is still an unregistered URI.
    for uri in ["http://127.0.0.1:51234/other", "http://127.0.0.2:51234/cb"] {
        let request = AuthRequest::code("cli").set("redirect_uri", uri);
        assert_eq!(
            page(ask(&core, &request, Some(&session), T0).await),
            AuthorizePageError::UnregisteredRedirectUri
        );
    }
}

#[tokio::test]
async fn a_confidential_clients_loopback_uri_is_matched_exactly() {
    let core = jwt_core();
    redirecting_client(
        &core,
        "web",
        false,
        &["http://127.0.0.1/cb"],
        false,
        PkceRule::Required,
    );
    let request = AuthRequest::code("web").set("redirect_uri", "http://127.0.0.1:51234/cb");
    assert_eq!(
        page(ask(&core, &request, None, T0).await),
        AuthorizePageError::UnregisteredRedirectUri
    );
}

// --- Implicit (RFC 6749 §4.2) ----------------------------------------------------

#[tokio::test]
async fn implicit_answers_with_a_token_in_the_fragment_and_no_refresh_token() {
    let core = jwt_core();
    let (session, ann) = web_and_ann(&core).await;
    let rs = confidential(&core, "rs");
    let request = AuthRequest::token("web");
    let issued = redirect(answer(&core, &request, Some(&session), Decision::Allow, T0).await);
    assert!(issued.in_fragment);
    assert_eq!(
        names(&issued),
        [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "state",
            "iss"
        ]
    );
    assert_eq!(param(&issued, "token_type"), Some("Bearer"));
    assert_eq!(param(&issued, "expires_in"), Some("3600"));
    assert_eq!(param(&issued, "scope"), Some("read"));
    assert_eq!(param(&issued, "state"), Some("xyz"));
    assert_eq!(param(&issued, "iss"), Some("https://auth.test"));
    assert_eq!(param(&issued, "refresh_token"), None);
    assert!(
        issued
            .location()
            .starts_with(&format!("{REDIRECT}#access_token="))
    );
    assert!(!issued.location().contains('?'));

    let access = param(&issued, "access_token").unwrap();
    let found = active(introspect_at(&core, &rs, access, T0 + 1).await);
    assert_eq!(found.sub, ann.id);
    assert_eq!(found.client_id, "web");
    assert_eq!(found.scope, "read");
    assert_eq!(found.exp, T0 + 3600);
    assert_eq!(
        introspect_at(&core, &rs, access, T0 + 3600).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn implicit_opaque_tokens_are_stored_and_introspect_active() {
    let core = opaque_core();
    let (session, ann) = web_and_ann(&core).await;
    change_client(&core, "web", |client| client.skip_consent = true);
    let rs = confidential(&core, "rs");
    let issued = redirect(ask(&core, &AuthRequest::token("web"), Some(&session), T0).await);
    let access = param(&issued, "access_token").unwrap();
    assert!(access.starts_with("oat_"), "{access}");
    let found = active(introspect_at(&core, &rs, access, T0 + 1).await);
    assert_eq!(found.sub, ann.id);
    assert!(core.store.refresh_records().is_empty());
}

#[tokio::test]
async fn a_token_that_cannot_be_signed_is_server_error_for_the_client() {
    let core = jwt_core();
    redirecting_client(&core, "web", false, &[REDIRECT], true, PkceRule::Required);
    let ann = user(&core, "ann");
    // Before the only key may sign.
    let early = T0 - 60;
    let session = session_of(&core, &ann, early).await;
    let refused = redirect(ask(&core, &AuthRequest::token("web"), Some(&session), early).await);
    assert!(refused.in_fragment);
    assert_eq!(
        error_of(&refused),
        ("server_error", "The server encountered an unexpected error")
    );
    assert_eq!(param(&refused, "state"), Some("xyz"));
    assert_eq!(param(&refused, "access_token"), None);
}

// --- Sessions ------------------------------------------------------------------

#[tokio::test]
async fn a_session_names_its_user_until_it_expires() {
    let core = jwt_core();
    let ann = user(&core, "ann");
    let started = sessions::start(&core, &ann, T0).await.unwrap();
    assert_eq!(started.expires_at, T0 + core.policy.session_ttl);
    let found = sessions::user_of(&core, &started.id, T0 + 1).await.unwrap();
    assert_eq!(found.map(|user| user.id), Some(ann.id.clone()));
    let last = started.expires_at - 1;
    assert!(
        sessions::user_of(&core, &started.id, last)
            .await
            .unwrap()
            .is_some()
    );
    let expired = sessions::user_of(&core, &started.id, started.expires_at)
        .await
        .unwrap();
    assert_eq!(expired, None);
    // And an expired session is no session to the endpoint either.
    redirecting_client(&core, "web", false, &[REDIRECT], false, PkceRule::Required);
    let outcome = ask(
        &core,
        &AuthRequest::code("web"),
        Some(&started.id),
        started.expires_at,
    )
    .await;
    login_page(outcome);
}

#[tokio::test]
async fn every_login_starts_a_new_session() {
    let core = jwt_core();
    let ann = user(&core, "ann");
    let first = session_of(&core, &ann, T0).await;
    let second = session_of(&core, &ann, T0).await;
    assert_ne!(first, second);
    assert_eq!(first.len(), 43);
}

#[tokio::test]
async fn a_made_up_cookie_names_no_one_and_costs_no_lookup() {
    let core = jwt_core();
    user(&core, "ann");
    let before = core.store.lookups();
    for cookie in [
        "",
        "admin",
        &"A".repeat(42),
        &"A".repeat(44),
        &format!("{}+", "A".repeat(42)),
        &format!("{}=", "A".repeat(42)),
    ] {
        assert_eq!(
            sessions::user_of(&core, cookie, T0).await.unwrap(),
            None,
            "{cookie}"
        );
        sessions::end(&core, cookie).await.unwrap();
    }
    assert_eq!(core.store.lookups(), before);
    // A well-formed value that names no session costs one.
    let unknown = "A".repeat(43);
    assert_eq!(sessions::user_of(&core, &unknown, T0).await.unwrap(), None);
    assert_eq!(core.store.lookups(), before + 1);
}

#[tokio::test]
async fn a_locked_disabled_or_expired_password_user_has_no_session() {
    let core = jwt_core();
    let ann = user(&core, "ann");
    let session = session_of(&core, &ann, T0).await;
    for status in [
        UserStatus {
            locked: true,
            ..UserStatus::default()
        },
        UserStatus {
            disabled: true,
            ..UserStatus::default()
        },
        UserStatus {
            password_expired: true,
            ..UserStatus::default()
        },
    ] {
        core.store.set_user_status(&ann.id, status);
        assert_eq!(
            sessions::user_of(&core, &session, T0 + 1).await.unwrap(),
            None,
            "{status:?}"
        );
    }
    // The session itself was not the problem.
    core.store.set_user_status(&ann.id, UserStatus::default());
    assert!(
        sessions::user_of(&core, &session, T0 + 1)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn ending_a_session_ends_it_and_no_other() {
    let core = jwt_core();
    let ann = user(&core, "ann");
    let ended = session_of(&core, &ann, T0).await;
    let kept = session_of(&core, &ann, T0).await;
    sessions::end(&core, &ended).await.unwrap();
    assert_eq!(
        sessions::user_of(&core, &ended, T0 + 1).await.unwrap(),
        None
    );
    assert!(
        sessions::user_of(&core, &kept, T0 + 1)
            .await
            .unwrap()
            .is_some()
    );
}

/// The login page's `POST`, as `ann` with `password`, from a browser that
/// may already hold a session.
async fn log_ann_in(
    core: &TestCore,
    password: &str,
    previous: Option<&str>,
) -> crate::oauth::authorize::LoginOutcome {
    let attempt = crate::oauth::user_auth::LoginAttempt {
        login: "ann".into(),
        password: Secret::new(password),
        origin: None,
    };
    crate::oauth::authorize::log_in(
        core,
        &AuthRequest::code("web").params(),
        &attempt,
        previous,
        T0,
    )
    .await
}

#[tokio::test]
async fn a_login_starts_a_new_session_and_ends_the_one_it_replaces() {
    use crate::oauth::authorize::LoginOutcome;
    let core = jwt_core();
    let (old, ann) = web_and_ann(&core).await;

    let wrong = log_ann_in(&core, "nope", Some(&old)).await;
    assert!(
        matches!(&wrong, LoginOutcome::Failed(_, err) if err.description() == "Bad credentials"),
        "a wrong password is the password grant's answer"
    );
    // A failed login leaves the session it found alone.
    assert_eq!(
        sessions::user_of(&core, &old, T0)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ann.id.clone())
    );

    let LoginOutcome::LoggedIn(new) = log_ann_in(&core, PASSWORD, Some(&old)).await else {
        panic!("the right password logs in");
    };
    assert_ne!(new.id, old);
    assert_eq!(new.expires_at, T0 + core.policy.session_ttl);
    assert!(sessions::user_of(&core, &old, T0).await.unwrap().is_none());
    assert_eq!(
        sessions::user_of(&core, &new.id, T0)
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ann.id)
    );
}
