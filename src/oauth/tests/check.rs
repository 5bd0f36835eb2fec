//! The request check (SPEC §9) and API keys (SPEC §8), row by row, over the
//! in-memory store.

use super::*;
use crate::oauth::api_keys::{ApiKeyRefusal, ApiKeyRequest, new_api_key, rotate_api_key};
use crate::oauth::check::{CheckAnswer, CheckOutcome, CheckRequest, Denial, check};
use crate::oauth::validate::CredentialType;
use crate::tokens::credential::{CredentialKind, mint};

const MAX_TTL: i64 = 365 * 86_400;

fn request(credentials: &[&str], scopes: &[&str]) -> CheckRequest {
    CheckRequest {
        credentials: credentials.iter().map(|c| (*c).to_owned()).collect(),
        required_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

async fn outcome(core: &TestCore, credentials: &[&str], scopes: &[&str]) -> CheckOutcome {
    check(core, &request(credentials, scopes), T0).await.outcome
}

async fn answer(core: &TestCore, credentials: &[&str], scopes: &[&str]) -> CheckAnswer {
    CheckAnswer::of(&outcome(core, credentials, scopes).await)
}

/// A key for `client_id` with `scopes`, stored; returns its value.
fn api_key(core: &TestCore, client_id: &str, scopes: Option<&str>) -> (String, String) {
    let client = core.store.client_now(client_id);
    let request = ApiKeyRequest {
        scopes: scopes.map(|s| ScopeSet::parse(s).unwrap()),
        ..ApiKeyRequest::default()
    };
    let key = new_api_key(&client, request, MAX_TTL, T0).unwrap();
    core.store.put_api_key(key.record.clone());
    (key.value.expose().to_owned(), key.record.key_id)
}

async fn jwt(core: &TestCore, client: &ClientCredentials) -> String {
    token(core, client, client_credentials_grant(None), T0)
        .await
        .unwrap()
        .access_token
}

#[tokio::test]
async fn a_valid_token_with_every_required_scope_is_allowed_with_its_identity() {
    let core = jwt_core();
    let client = confidential(&core, "api");
    let token = jwt(&core, &client).await;
    let answer = answer(&core, &[&token], &["read", "write"]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.www_authenticate, None);
    let identity: Vec<(&str, &str)> = answer
        .identity
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let expires = (T0 + 3600).to_string();
    assert_eq!(
        identity,
        [
            ("x-auth-subject", "api"),
            ("x-auth-client-id", "api"),
            ("x-auth-username", ""),
            ("x-auth-scope", "read write"),
            ("x-auth-credential", "access_token"),
            ("x-auth-expires", expires.as_str()),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], "api");
}

#[tokio::test]
async fn a_users_token_passes_the_user_as_subject_and_username() {
    let core = opaque_core();
    let client = confidential(&core, "app");
    let ann = user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let answer = answer(&core, &[&issued.access_token], &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.identity[0].1, ann.id);
    assert_eq!(answer.identity[2].1, "ann");
}

#[tokio::test]
async fn no_credential_is_a_bare_401() {
    let core = jwt_core();
    let answer = answer(&core, &[], &["read"]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(r#"Bearer realm="oauthd""#)
    );
    assert_eq!(answer.body, "{}");
    assert!(answer.identity.iter().all(|(_, value)| value.is_empty()));
}

#[tokio::test]
async fn malformed_unknown_expired_and_revoked_credentials_are_invalid_tokens() {
    let core = jwt_core();
    let client = confidential(&core, "api");
    let token = jwt(&core, &client).await;
    let unknown = mint(CredentialKind::AccessToken);
    let unknown_key = mint(CredentialKind::ApiKey);
    for (credential, description) in [
        ("not-a-token", "The credential is malformed"),
        ("a.b.c", "The credential is malformed"),
        (unknown.as_str(), "The credential is unknown"),
        (unknown_key.as_str(), "The credential is unknown"),
    ] {
        let answer = answer(&core, &[credential], &[]).await;
        assert_eq!(answer.status, 401, "{credential}");
        assert_eq!(
            answer.www_authenticate.unwrap(),
            format!(
                r#"Bearer realm="oauthd", error="invalid_token", error_description="{description}""#
            )
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], description);
    }
    let expired = check(&core, &request(&[&token], &[]), T0 + 3600).await;
    assert_eq!(
        expired.outcome,
        CheckOutcome::Denied(Denial::InvalidToken("The credential has expired"))
    );
    crate::oauth::revoke::revoke(&core, &client, &token, None, T0)
        .await
        .unwrap();
    assert_eq!(
        outcome(&core, &[&token], &[]).await,
        CheckOutcome::Denied(Denial::InvalidToken("The credential has been revoked"))
    );
}

#[tokio::test]
async fn a_token_of_a_disabled_client_or_locked_user_is_invalid() {
    let core = jwt_core();
    let client = confidential(&core, "app");
    let ann = user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    core.store.set_user_status(
        &ann.id,
        UserStatus {
            locked: true,
            ..UserStatus::default()
        },
    );
    assert_eq!(
        outcome(&core, &[&issued.access_token], &[]).await,
        CheckOutcome::Denied(Denial::InvalidToken("The credential's user is locked"))
    );
    core.store.set_user_status(&ann.id, UserStatus::default());
    let mut disabled = (*core.store.client_now("app")).clone();
    disabled.enabled = false;
    core.store.put_client(disabled);
    assert_eq!(
        outcome(&core, &[&issued.access_token], &[]).await,
        CheckOutcome::Denied(Denial::InvalidToken(
            "The credential's client is disabled or deleted"
        ))
    );
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_every_required_scope() {
    let core = jwt_core();
    let client = client_with(&core, "api", &GrantType::ALL, "read", false);
    let token = jwt(&core, &client).await;
    let answer = answer(&core, &[&token], &["read admin", "audit"]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.www_authenticate.as_deref(),
        Some(r#"Bearer realm="oauthd", error="insufficient_scope", scope="admin audit read""#)
    );
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test]
async fn two_different_credentials_are_400_and_the_same_one_twice_counts_once() {
    let core = jwt_core();
    let client = confidential(&core, "api");
    let first = jwt(&core, &client).await;
    let second = jwt(&core, &client).await;
    let answer = answer(&core, &[&first, &second], &[]).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer
            .www_authenticate
            .unwrap()
            .starts_with(r#"Bearer realm="oauthd", error="invalid_request", error_description=""#)
    );
    assert_eq!(answer_status(&core, &[&first, &first]).await, 200);
    // Even an invalid one beside a valid one: the client must send one.
    assert_eq!(answer_status(&core, &[&first, "junk"]).await, 400);
}

async fn answer_status(core: &TestCore, credentials: &[&str]) -> u16 {
    answer(core, credentials, &[]).await.status
}

#[tokio::test]
async fn refresh_tokens_codes_and_client_secrets_are_never_accepted_and_never_looked_up() {
    let core = opaque_core();
    let client = confidential(&core, "app");
    user(&core, "ann");
    let refresh = login(&core, &client, "ann").await.refresh_token.unwrap();
    let lookups = core.store.lookups();
    for credential in [
        refresh,
        mint(CredentialKind::AuthorizationCode),
        mint(CredentialKind::ClientSecret),
    ] {
        assert_eq!(
            outcome(&core, &[&credential], &[]).await,
            CheckOutcome::Denied(Denial::InvalidToken(
                "Only an access token or an API key is accepted here"
            ))
        );
    }
    assert_eq!(core.store.lookups(), lookups);
}

#[tokio::test]
async fn a_malformed_scope_requirement_is_400() {
    let core = jwt_core();
    let client = confidential(&core, "api");
    let token = jwt(&core, &client).await;
    assert_eq!(answer(&core, &[&token], &["re\"ad"]).await.status, 400);
}

#[tokio::test]
async fn a_store_that_does_not_answer_is_503_without_a_challenge() {
    let core = opaque_core();
    let client = confidential(&core, "api");
    let token = jwt(&core, &client).await;
    core.store.set_down(true);
    let answer = answer(&core, &[&token], &[]).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.www_authenticate, None);
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn an_api_key_acts_as_its_client_within_its_scopes() {
    let core = jwt_core();
    confidential(&core, "svc");
    let (key, key_id) = api_key(&core, "svc", Some("read"));
    let CheckOutcome::Allowed(valid) = outcome(&core, &[&key], &["read"]).await else {
        panic!("the key should be allowed");
    };
    assert_eq!(valid.kind, CredentialType::ApiKey);
    assert_eq!(valid.subject(), "svc");
    assert_eq!(core.store.api_key_uses(), [(key_id, T0)]);
    let worded = answer(&core, &[&key], &[]).await;
    assert_eq!(worded.identity[4].1, "api_key");
    assert_eq!(answer_status(&core, &[&key]).await, 200);
    assert_eq!(answer(&core, &[&key], &["write"]).await.status, 403);
}

#[tokio::test]
async fn an_api_key_is_refused_once_revoked_expired_or_its_client_disabled() {
    let core = jwt_core();
    confidential(&core, "svc");
    let (key, key_id) = api_key(&core, "svc", None);
    let record_expires = T0 + 90 * 86_400;
    let late = check(&core, &request(&[&key], &[]), record_expires).await;
    assert_eq!(
        late.outcome,
        CheckOutcome::Denied(Denial::InvalidToken("The credential has expired"))
    );
    let mut disabled = (*core.store.client_now("svc")).clone();
    disabled.enabled = false;
    core.store.put_client(disabled.clone());
    assert_eq!(answer_status(&core, &[&key]).await, 401);
    disabled.enabled = true;
    core.store.put_client(disabled);
    assert_eq!(answer_status(&core, &[&key]).await, 200);
    use crate::oauth::storage::ApiKeyStore as _;
    assert!(core.store.revoke_api_key(&key_id).await.unwrap());
    assert_eq!(
        outcome(&core, &[&key], &[]).await,
        CheckOutcome::Denied(Denial::InvalidToken("The credential has been revoked"))
    );
    core.store.delete_client("svc");
    assert_eq!(answer_status(&core, &[&key]).await, 401);
}

#[tokio::test]
async fn a_key_loses_a_scope_its_client_has_lost() {
    let core = jwt_core();
    confidential(&core, "svc");
    let (key, _) = api_key(&core, "svc", Some("read write"));
    let mut narrowed = (*core.store.client_now("svc")).clone();
    narrowed.scopes = ScopeSet::parse("read").unwrap();
    core.store.put_client(narrowed);
    assert_eq!(answer(&core, &[&key], &["write"]).await.status, 403);
    assert_eq!(answer(&core, &[&key], &["read"]).await.status, 200);
}

#[tokio::test]
async fn introspection_answers_for_an_api_key_with_the_members_the_spec_lists() {
    let core = jwt_core();
    let rs = confidential(&core, "rs");
    confidential(&core, "svc");
    let (key, _) = api_key(&core, "svc", Some("read"));
    let answer = active(introspect_at(&core, &rs, &key, T0).await);
    assert_eq!(answer.token_type, "api_key");
    assert_eq!(answer.sub, "svc");
    assert_eq!(answer.client_id, "svc");
    assert_eq!(answer.scope, "read");
    assert_eq!((answer.iat, answer.exp), (T0, T0 + 90 * 86_400));
    assert_eq!(answer.nbf, None);
    assert_eq!(answer.iss, None);
    assert_eq!(answer.aud, None);
    assert_eq!(answer.jti, None);
    assert_eq!(answer.username, None);
}

#[tokio::test]
async fn a_client_may_revoke_its_own_key_but_not_another_clients() {
    let core = jwt_core();
    let svc = confidential(&core, "svc");
    let other = confidential(&core, "other");
    let (key, _) = api_key(&core, "svc", None);
    let refused = crate::oauth::revoke::revoke(&core, &other, &key, None, T0).await;
    assert_eq!(refused.unwrap_err().code(), "unauthorized_client");
    assert_eq!(answer_status(&core, &[&key]).await, 200);
    crate::oauth::revoke::revoke(&core, &svc, &key, None, T0)
        .await
        .unwrap();
    assert_eq!(answer_status(&core, &[&key]).await, 401);
}

#[test]
fn a_new_key_is_an_oak_credential_within_the_clients_scopes_and_lifetime_bounds() {
    let core = jwt_core();
    confidential(&core, "svc");
    let client = core.store.client_now("svc");
    let key = new_api_key(&client, ApiKeyRequest::default(), MAX_TTL, T0).unwrap();
    assert!(key.value.expose().starts_with("oak_"));
    assert_eq!(key.record.key_hash, hash_secret(key.value.expose()));
    assert_eq!(key.record.scope.to_string(), "read write");
    assert_eq!(key.record.expires_at, T0 + 90 * 86_400);
    assert_eq!(key.record.name, "svc");
    assert!(key.value.expose().ends_with(&key.record.hint));
    assert_eq!(key.record.hint.len(), 4);

    let wide = ApiKeyRequest {
        scopes: Some(ScopeSet::parse("read admin").unwrap()),
        ..ApiKeyRequest::default()
    };
    assert_eq!(
        new_api_key(&client, wide, MAX_TTL, T0).unwrap_err(),
        ApiKeyRefusal::ScopeWiderThanClient("admin".into())
    );
    for (asked, refusal) in [
        (
            MAX_TTL + 1,
            ApiKeyRefusal::LifetimeTooLong {
                asked: MAX_TTL + 1,
                max: MAX_TTL,
            },
        ),
        (0, ApiKeyRefusal::LifetimeNotPositive(0)),
    ] {
        let request = ApiKeyRequest {
            expires_in: Some(asked),
            ..ApiKeyRequest::default()
        };
        assert_eq!(
            new_api_key(&client, request, MAX_TTL, T0).unwrap_err(),
            refusal
        );
    }
    // A maximum below the default lowers the default with it.
    let short = new_api_key(&client, ApiKeyRequest::default(), 3600, T0).unwrap();
    assert_eq!(short.record.expires_at, T0 + 3600);
}

#[test]
fn a_rotated_key_keeps_client_name_and_scopes_and_the_old_one_stops_after_the_overlap() {
    let core = jwt_core();
    confidential(&core, "svc");
    let client = core.store.client_now("svc");
    let request = ApiKeyRequest {
        name: Some("billing".into()),
        scopes: Some(ScopeSet::parse("read").unwrap()),
        expires_in: Some(30 * 86_400),
    };
    let old = new_api_key(&client, request, MAX_TTL, T0).unwrap().record;
    let later = T0 + 86_400;
    let (new, old_stops) = rotate_api_key(&old, 0, MAX_TTL, later);
    assert_eq!(old_stops, later);
    assert_ne!(new.record.key_id, old.key_id);
    assert_eq!(
        (&new.record.client_id, &new.record.name, &new.record.scope),
        (&old.client_id, &old.name, &old.scope)
    );
    assert_eq!(new.record.expires_at, later + 30 * 86_400);
    let (_, old_stops) = rotate_api_key(&old, 600, MAX_TTL, later);
    assert_eq!(old_stops, later + 600);
    // An overlap never extends the old key.
    let (_, old_stops) = rotate_api_key(&old, 100 * 86_400, MAX_TTL, later);
    assert_eq!(old_stops, old.expires_at);
}
