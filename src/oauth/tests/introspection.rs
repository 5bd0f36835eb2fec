//! Introspection (RFC 7662) through the validator.

use super::*;
use crate::oauth::testing::{test_core_with_keys, test_key};
use crate::oauth::validate::{Invalid, validate};
use crate::tokens::credential::{CredentialKind, mint};

#[tokio::test]
async fn an_active_jwt_reports_every_member() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let rs = confidential(&core, "rs");
    let ann = user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let answer = active(introspect_at(&core, &rs, &issued.access_token, T0 + 5).await);
    assert_eq!(answer.client_id, "web");
    assert_eq!(answer.sub, ann.id);
    assert_eq!(answer.username.as_deref(), Some("ann"));
    assert_eq!(answer.scope, "read write");
    assert_eq!(answer.token_type, "Bearer");
    assert_eq!(
        (answer.iat, answer.nbf, answer.exp),
        (T0, Some(T0), T0 + 3600)
    );
    assert_eq!(answer.iss.as_deref(), Some(core.policy.issuer.as_str()));
    assert_eq!(answer.aud.as_deref(), Some(core.policy.audience.as_str()));
    assert!(answer.jti.is_some());
}

#[tokio::test]
async fn a_refresh_token_introspects_as_refresh_token_until_used() {
    let core = opaque_core();
    let client = confidential(&core, "web");
    let rs = confidential(&core, "rs");
    user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let refresh = issued.refresh_token.unwrap();
    let answer = active(introspect_at(&core, &rs, &refresh, T0 + 1).await);
    assert_eq!(answer.token_type, "refresh_token");
    assert_eq!(answer.aud, None);
    assert_eq!(answer.jti, None);
    token(&core, &client, refresh_grant(&refresh, None), T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        introspect_at(&core, &rs, &refresh, T0 + 3).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn tokens_expire_exactly_at_exp_for_both_formats() {
    for core in [jwt_core(), opaque_core()] {
        let client = confidential(&core, "svc");
        let issued = token(&core, &client, client_credentials_grant(None), T0)
            .await
            .unwrap();
        let exp = T0 + issued.expires_in;
        active(introspect_at(&core, &client, &issued.access_token, exp - 1).await);
        assert_eq!(
            introspect_at(&core, &client, &issued.access_token, exp).await,
            Introspection::Inactive
        );
        let verdict = validate(&core, &issued.access_token, None, exp).await;
        assert_eq!(verdict.unwrap().unwrap_err(), Invalid::Expired);
    }
}

#[tokio::test]
async fn the_validator_says_why_a_token_is_not_valid() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let why = |now| validate(&core, &issued.access_token, None, now);
    assert!(why(T0).await.unwrap().is_ok());
    assert_eq!(
        why(T0 - 1).await.unwrap().unwrap_err(),
        Invalid::NotYetValid
    );

    core.store.set_user_status(
        &ann.id,
        UserStatus {
            locked: true,
            ..UserStatus::default()
        },
    );
    assert_eq!(why(T0).await.unwrap().unwrap_err(), Invalid::UserLocked);
    core.store.set_user_status(
        &ann.id,
        UserStatus {
            disabled: true,
            ..UserStatus::default()
        },
    );
    assert_eq!(why(T0).await.unwrap().unwrap_err(), Invalid::UserDisabled);
    core.store.set_user_status(&ann.id, UserStatus::default());

    core.store.delete_client("web");
    assert_eq!(why(T0).await.unwrap().unwrap_err(), Invalid::ClientDisabled);

    let unknown = validate(&core, &mint(CredentialKind::AccessToken), None, T0).await;
    assert_eq!(unknown.unwrap().unwrap_err(), Invalid::Unknown);
    let made_up = validate(&core, "not-a-token-of-ours", None, T0).await;
    assert_eq!(made_up.unwrap().unwrap_err(), Invalid::Malformed);
    let forged = validate(&core, "a.b.c", None, T0).await;
    assert_eq!(forged.unwrap().unwrap_err(), Invalid::Malformed);
}

#[tokio::test]
async fn a_token_of_another_issuer_or_audience_is_inactive() {
    let key = test_key(SigningAlg::Es256);
    let core = test_core_with_keys(
        TokenFormat::Jwt,
        SigningAlg::Es256,
        std::slice::from_ref(&key),
    );
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    // Same keys, another configuration (RFC 9068 §4).
    let elsewhere = [
        (Some("https://elsewhere.test"), None),
        (None, Some("https://api.test")),
    ];
    for (issuer, audience) in elsewhere {
        let mut other = test_core_with_keys(
            TokenFormat::Jwt,
            SigningAlg::Es256,
            std::slice::from_ref(&key),
        );
        confidential(&other, "svc");
        if let Some(issuer) = issuer {
            other.policy.issuer = issuer.into();
        }
        if let Some(audience) = audience {
            other.policy.audience = audience.into();
        }
        assert_eq!(
            introspect_at(&other, &client, &issued.access_token, T0).await,
            Introspection::Inactive
        );
    }
    // The same configuration vouches for it.
    active(introspect_at(&core, &client, &issued.access_token, T0).await);
}

#[tokio::test]
async fn a_failed_key_reload_is_temporarily_unavailable_not_inactive() {
    let signer = jwt_core();
    let client = confidential(&signer, "svc");
    let issued = token(&signer, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    // A replica that does not know the signing key yet, and cannot reload.
    let replica = jwt_core();
    confidential(&replica, "svc");
    replica.store.set_key_reload_fails(true);
    let err = introspect(&replica, &client, &issued.access_token, None, T0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "temporarily_unavailable");
}

#[tokio::test]
async fn an_unavailable_store_is_temporarily_unavailable_for_opaque_tokens() {
    let core = opaque_core();
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    core.store.set_down(true);
    let err = validate(&core, &issued.access_token, None, T0)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "temporarily_unavailable");
}

#[tokio::test]
async fn only_confidential_clients_introspect_and_the_token_is_required() {
    let core = jwt_core();
    let rs = confidential(&core, "rs");
    let spa = client_with(&core, "spa", &[GrantType::Password], "read", true);
    let err = introspect(&core, &spa, "x", None, T0).await.unwrap_err();
    assert_eq!(err, OAuthError::InvalidClient);
    let err = introspect(&core, &rs, "", None, T0).await.unwrap_err();
    assert_eq!(err.description(), "Missing required parameter: token");
}
