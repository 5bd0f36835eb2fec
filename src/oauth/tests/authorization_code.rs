//! The authorization code grant at the token endpoint (SPEC §7, RFC 6749
//! §4.1.3, RFC 7636): what a code buys, every way a code is refused, and what
//! a replay takes back. Codes come from the authorization endpoint, and go
//! through `issue_token` as the token endpoint's do.

use super::*;
use crate::oauth::grants::GrantParameters;
use crate::tokens::credential::{self, CredentialKind};

/// A confidential client `web` on [`REDIRECT`] that skips consent, and a
/// user `ann`, logged in: the client's credentials and her session cookie.
async fn web_and_ann(core: &TestCore) -> (ClientCredentials, String, User) {
    let web = redirecting_client(core, "web", false, &[REDIRECT], true, PkceRule::Required);
    let ann = user(core, "ann");
    let session = session_of(core, &ann, T0).await;
    (web, session, ann)
}

/// A code for `request`, approved by the session's user.
async fn code_for(core: &TestCore, request: &AuthRequest, session: &str, now: UnixTime) -> String {
    let outcome = match ask(core, request, Some(session), now).await {
        Outcome::Consent(..) => answer(core, request, Some(session), Decision::Allow, now).await,
        other => other,
    };
    param(&redirect(outcome), "code").unwrap().to_owned()
}

/// A token request with these parameters, typed as the edge types them.
async fn token_request(
    core: &TestCore,
    client: &ClientCredentials,
    parameters: GrantParameters,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    let request = TokenRequest {
        client: client.clone(),
        grant: GrantRequest::parse(parameters),
        origin: None,
    };
    issue_token(core, request, now).await
}

/// `grant_type=authorization_code` with `code`, `redirect_uri` and
/// `code_verifier` as given.
fn code_parameters(
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> GrantParameters {
    GrantParameters {
        grant_type: "authorization_code".into(),
        code: Some(Secret::new(code)),
        redirect_uri: redirect_uri.map(str::to_owned),
        code_verifier: code_verifier.map(Secret::new),
        ..GrantParameters::default()
    }
}

/// Redeems `code` with [`AuthRequest::code`]'s redirect URI and verifier.
async fn redeem(
    core: &TestCore,
    client: &ClientCredentials,
    code: &str,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    let parameters = code_parameters(code, Some(REDIRECT), Some(VERIFIER));
    token_request(core, client, parameters, now).await
}

// --- What a code buys --------------------------------------------------------

#[tokio::test]
async fn a_code_buys_tokens_for_the_user_who_approved_it() {
    let core = jwt_core();
    let (web, session, ann) = web_and_ann(&core).await;
    let rs = confidential(&core, "rs");
    let request = AuthRequest::code("web").set("scope", "read write");
    let code = code_for(&core, &request, &session, T0).await;
    let issued = redeem(&core, &web, &code, T0 + 1).await.unwrap();
    assert_eq!(issued.scope.to_string(), "read write");
    assert_eq!(issued.expires_in, 3600);
    let found = active(introspect_at(&core, &rs, &issued.access_token, T0 + 2).await);
    assert_eq!(found.sub, ann.id);
    assert_eq!(found.username.as_deref(), Some("ann"));
    assert_eq!(found.client_id, "web");
    assert_eq!(found.scope, "read write");

    // The refresh token carries the same user on.
    let refresh = issued.refresh_token.unwrap();
    assert!(refresh.starts_with("ort_"));
    let refreshed = token(&core, &web, refresh_grant(&refresh, None), T0 + 10)
        .await
        .unwrap();
    let found = active(introspect_at(&core, &rs, &refreshed.access_token, T0 + 11).await);
    assert_eq!(found.sub, ann.id);
    assert_eq!(found.username.as_deref(), Some("ann"));
}

#[tokio::test]
async fn no_refresh_token_without_the_refresh_grant() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    change_client(&core, "web", |client| {
        client.grant_types = vec![GrantType::AuthorizationCode];
    });
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    let issued = redeem(&core, &web, &code, T0 + 1).await.unwrap();
    assert!(issued.refresh_token.is_none());
    assert!(core.store.refresh_records().is_empty());
}

#[tokio::test]
async fn a_code_is_stored_as_a_hash_bound_to_its_request() {
    let core = jwt_core();
    let (_, session, ann) = web_and_ann(&core).await;
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    assert!(matches!(
        crate::oauth::presented::classify(&code),
        crate::oauth::presented::Presented::Credential(CredentialKind::AuthorizationCode, _)
    ));
    let stored = core.store.code_records();
    assert_eq!(stored.len(), 1);
    let record = &stored[0];
    assert_eq!(record.code_hash, hash_secret(&code));
    assert!(!record.code_hash.contains(&code));
    assert_eq!(record.client_id, "web");
    assert_eq!(record.user_id, ann.id);
    assert_eq!(record.username, "ann");
    assert_eq!(record.redirect_uri.as_deref(), Some(REDIRECT));
    assert_eq!(record.scope.to_string(), "read");
    assert_eq!(record.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(record.issued_at, T0);
    assert_eq!(record.expires_at, T0 + core.policy.authorization_code_ttl);
    assert_eq!(record.used_at, None);
}

#[tokio::test]
async fn a_public_client_redeems_with_its_client_id_only() {
    let core = jwt_core();
    let loopback = "http://127.0.0.1/cb";
    let app = redirecting_client(&core, "app", true, &[loopback], false, PkceRule::Required);
    assert!(app.client_secret.is_none());
    let ann = user(&core, "ann");
    let session = session_of(&core, &ann, T0).await;
    let on_port = "http://127.0.0.1:51234/cb";
    let request = AuthRequest::code("app").set("redirect_uri", on_port);
    let code = code_for(&core, &request, &session, T0).await;
    // The code is bound to the port the request named.
    let other_port = code_parameters(&code, Some("http://127.0.0.1:51235/cb"), Some(VERIFIER));
    assert_eq!(
        described(token_request(&core, &app, other_port, T0 + 1).await),
        (
            "invalid_grant",
            "redirect_uri does not match the one of the authorization request".into()
        )
    );
    let parameters = code_parameters(&code, Some(on_port), Some(VERIFIER));
    let issued = token_request(&core, &app, parameters, T0 + 1)
        .await
        .unwrap();
    assert!(issued.refresh_token.is_some());
}

// --- Refusals ----------------------------------------------------------------

#[tokio::test]
async fn a_confidential_client_must_authenticate_and_be_allowed_the_grant() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    let wrong = ClientCredentials {
        client_id: "web".into(),
        client_secret: Some(Secret::new("not the secret")),
    };
    assert_eq!(
        described(redeem(&core, &wrong, &code, T0 + 1).await).0,
        "invalid_client"
    );
    let bare = ClientCredentials {
        client_id: "web".into(),
        client_secret: None,
    };
    assert_eq!(
        described(redeem(&core, &bare, &code, T0 + 1).await).0,
        "invalid_client"
    );
    change_client(&core, "web", |client| {
        client.grant_types = vec![GrantType::Implicit];
    });
    assert_eq!(
        described(redeem(&core, &web, &code, T0 + 1).await),
        (
            "unauthorized_client",
            "The client is not allowed to use the grant type authorization_code".into()
        )
    );
}

#[tokio::test]
async fn a_token_request_without_a_code_is_invalid_request() {
    let core = jwt_core();
    let (web, _, _) = web_and_ann(&core).await;
    let parameters = GrantParameters {
        grant_type: "authorization_code".into(),
        redirect_uri: Some(REDIRECT.into()),
        code_verifier: Some(Secret::new(VERIFIER)),
        ..GrantParameters::default()
    };
    assert_eq!(
        described(token_request(&core, &web, parameters, T0).await),
        ("invalid_request", "Missing required parameter: code".into())
    );
}

#[tokio::test]
async fn an_unknown_code_is_invalid_grant() {
    let core = jwt_core();
    let (web, _, _) = web_and_ann(&core).await;
    let unknown = credential::mint(CredentialKind::AuthorizationCode);
    assert_eq!(
        described(redeem(&core, &web, &unknown, T0).await),
        ("invalid_grant", "Authorization code is invalid".into())
    );
}

#[tokio::test]
async fn a_made_up_code_is_refused_without_a_store_lookup() {
    let core = jwt_core();
    let (web, _, _) = web_and_ann(&core).await;
    // What a request costs with a code worth looking up...
    let unknown = credential::mint(CredentialKind::AuthorizationCode);
    let before = core.store.lookups();
    redeem(&core, &web, &unknown, T0).await.unwrap_err();
    let with_lookup = core.store.lookups() - before;
    // ...and with values that cannot be a code: one lookup fewer.
    let mut made_up = unknown.clone();
    let last = made_up.pop().unwrap();
    made_up.push(if last == 'A' { 'B' } else { 'A' });
    let refresh_token = credential::mint(CredentialKind::RefreshToken);
    for value in [
        made_up.as_str(),
        "oac_made-up",
        refresh_token.as_str(),
        "not a code at all",
    ] {
        let before = core.store.lookups();
        assert_eq!(
            described(redeem(&core, &web, value, T0).await),
            ("invalid_grant", "Authorization code is invalid".into()),
            "{value}"
        );
        // A well-formed unknown code costs two store calls: the one-step
        // redemption, then the read that says why it failed.
        assert_eq!(core.store.lookups() - before, with_lookup - 2, "{value}");
    }
}

#[tokio::test]
async fn a_code_expires_after_its_ttl() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let ttl = core.policy.authorization_code_ttl;
    let late = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    assert_eq!(
        described(redeem(&core, &web, &late, T0 + ttl).await),
        ("invalid_grant", "Authorization code has expired".into())
    );
    let in_time = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    redeem(&core, &web, &in_time, T0 + ttl - 1).await.unwrap();
}

#[tokio::test]
async fn a_code_is_single_use() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    redeem(&core, &web, &code, T0 + 1).await.unwrap();
    assert_eq!(
        described(redeem(&core, &web, &code, T0 + 2).await),
        (
            "invalid_grant",
            "Authorization code has already been used".into()
        )
    );
}

#[tokio::test]
async fn another_clients_code_is_refused() {
    let core = jwt_core();
    let (_, session, _) = web_and_ann(&core).await;
    let thief = redirecting_client(&core, "thief", false, &[REDIRECT], true, PkceRule::Required);
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    assert_eq!(
        described(redeem(&core, &thief, &code, T0 + 1).await),
        (
            "invalid_grant",
            "Authorization code was issued to another client".into()
        )
    );
}

#[tokio::test]
async fn the_redirect_uri_of_the_request_must_be_given_again() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let mismatch = (
        "invalid_grant",
        "redirect_uri does not match the one of the authorization request".to_owned(),
    );
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    for given in [
        Some("https://app.example/other"),
        Some("https://app.example/cb/"),
        None,
    ] {
        let parameters = code_parameters(&code, given, Some(VERIFIER));
        assert_eq!(
            described(token_request(&core, &web, parameters, T0 + 1).await),
            mismatch,
            "{given:?}"
        );
    }
    redeem(&core, &web, &code, T0 + 1).await.unwrap();
}

#[tokio::test]
async fn a_request_without_redirect_uri_binds_none_but_a_given_one_must_be_registered() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let request = AuthRequest::code("web").without("redirect_uri");
    let code = code_for(&core, &request, &session, T0).await;
    let elsewhere = code_parameters(&code, Some("https://evil.example/cb"), Some(VERIFIER));
    assert_eq!(
        described(token_request(&core, &web, elsewhere, T0).await).0,
        "invalid_grant"
    );
    let none = code_parameters(&code, None, Some(VERIFIER));
    token_request(&core, &web, none, T0).await.unwrap();

    let code = code_for(&core, &request, &session, T0).await;
    let registered = code_parameters(&code, Some(REDIRECT), Some(VERIFIER));
    token_request(&core, &web, registered, T0).await.unwrap();
}

#[tokio::test]
async fn the_code_verifier_must_match_the_challenge() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let malformed =
        "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'";
    let wrong = format!("{}X", &VERIFIER[..VERIFIER.len() - 1]);
    let cases = [
        (
            Some(wrong.clone()),
            "code_verifier does not match the code_challenge",
        ),
        (
            Some("a".repeat(43)),
            "code_verifier does not match the code_challenge",
        ),
        (
            Some("a".repeat(128)),
            "code_verifier does not match the code_challenge",
        ),
        (Some("a".repeat(42)), malformed),
        (Some("a".repeat(129)), malformed),
        (Some(format!("{VERIFIER}+")), malformed),
        // The challenge itself is no verifier.
        (
            Some(CHALLENGE.to_owned()),
            "code_verifier does not match the code_challenge",
        ),
        (
            None,
            "code_verifier is required: the authorization request had a code_challenge",
        ),
    ];
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    for (verifier, description) in cases {
        let parameters = code_parameters(&code, Some(REDIRECT), verifier.as_deref());
        assert_eq!(
            described(token_request(&core, &web, parameters, T0 + 1).await),
            ("invalid_grant", description.to_owned()),
            "{verifier:?}"
        );
    }
    redeem(&core, &web, &code, T0 + 1).await.unwrap();
}

#[tokio::test]
async fn a_verifier_for_a_code_without_challenge_is_refused() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    change_client(&core, "web", |client| client.pkce = PkceRule::Optional);
    let request = AuthRequest::code("web")
        .without("code_challenge")
        .without("code_challenge_method");
    let code = code_for(&core, &request, &session, T0).await;
    assert_eq!(
        described(redeem(&core, &web, &code, T0 + 1).await),
        (
            "invalid_grant",
            "code_verifier was sent, but the authorization request had no code_challenge".into()
        )
    );
    let parameters = code_parameters(&code, Some(REDIRECT), None);
    token_request(&core, &web, parameters, T0 + 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_locked_or_disabled_users_code_buys_nothing() {
    let core = jwt_core();
    let (web, session, ann) = web_and_ann(&core).await;
    let cases = [
        (
            UserStatus {
                locked: true,
                ..UserStatus::default()
            },
            "User is locked",
        ),
        (
            UserStatus {
                disabled: true,
                ..UserStatus::default()
            },
            "User is disabled",
        ),
    ];
    for (status, description) in cases {
        core.store.set_user_status(&ann.id, UserStatus::default());
        let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
        core.store.set_user_status(&ann.id, status);
        assert_eq!(
            described(redeem(&core, &web, &code, T0 + 1).await),
            ("invalid_grant", description.into())
        );
    }
}

// --- Replay (RFC 6749 §4.1.2) --------------------------------------------------

async fn a_replayed_code_revokes_what_it_issued(core: TestCore) {
    let (web, session, _) = web_and_ann(&core).await;
    let rs = confidential(&core, "rs");
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    let first = redeem(&core, &web, &code, T0 + 1).await.unwrap();
    let refresh = first.refresh_token.clone().unwrap();
    // A refresh before the replay: its tokens came from the code too.
    let refreshed = token(&core, &web, refresh_grant(&refresh, None), T0 + 2)
        .await
        .unwrap();
    active(introspect_at(&core, &rs, &first.access_token, T0 + 3).await);

    assert_eq!(
        described(redeem(&core, &web, &code, T0 + 4).await),
        (
            "invalid_grant",
            "Authorization code has already been used".into()
        )
    );
    for access in [&first.access_token, &refreshed.access_token] {
        assert_eq!(
            introspect_at(&core, &rs, access, T0 + 5).await,
            Introspection::Inactive
        );
    }
    let successor = refreshed.refresh_token.unwrap();
    assert_eq!(
        described(token(&core, &web, refresh_grant(&successor, None), T0 + 5).await),
        ("invalid_grant", "Refresh token has been revoked".into())
    );
}

#[tokio::test]
async fn a_replayed_code_revokes_the_jwts_and_refresh_tokens_it_issued() {
    a_replayed_code_revokes_what_it_issued(jwt_core()).await;
}

#[tokio::test]
async fn a_replayed_code_revokes_the_opaque_tokens_and_refresh_tokens_it_issued() {
    a_replayed_code_revokes_what_it_issued(opaque_core()).await;
}

#[tokio::test]
async fn a_replay_revokes_the_access_token_when_no_refresh_token_was_issued() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    change_client(&core, "web", |client| {
        client.grant_types = vec![GrantType::AuthorizationCode];
    });
    let rs = confidential(&core, "rs");
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    let first = redeem(&core, &web, &code, T0 + 1).await.unwrap();
    redeem(&core, &web, &code, T0 + 2).await.unwrap_err();
    assert_eq!(
        introspect_at(&core, &rs, &first.access_token, T0 + 3).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn a_replay_after_the_code_expired_still_revokes() {
    let core = jwt_core();
    let (web, session, _) = web_and_ann(&core).await;
    let rs = confidential(&core, "rs");
    let code = code_for(&core, &AuthRequest::code("web"), &session, T0).await;
    let first = redeem(&core, &web, &code, T0 + 1).await.unwrap();
    let later = T0 + core.policy.authorization_code_ttl + 10;
    assert_eq!(
        described(redeem(&core, &web, &code, later).await).1,
        "Authorization code has already been used"
    );
    assert_eq!(
        introspect_at(&core, &rs, &first.access_token, later).await,
        Introspection::Inactive
    );
}
