//! Revocation (RFC 7009).

use super::*;
use crate::oauth::revoke::revoke;

#[tokio::test]
async fn a_revoked_access_token_is_inactive_and_a_second_revoke_is_a_no_op() {
    for core in [jwt_core(), opaque_core()] {
        let client = confidential(&core, "svc");
        let issued = token(&core, &client, client_credentials_grant(None), T0)
            .await
            .unwrap();
        revoke(&core, &client, &issued.access_token, None, T0 + 1)
            .await
            .unwrap();
        assert_eq!(
            introspect_at(&core, &client, &issued.access_token, T0 + 1).await,
            Introspection::Inactive
        );
        revoke(&core, &client, &issued.access_token, None, T0 + 2)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_their_access_tokens() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let refresh = issued.refresh_token.unwrap();
    revoke(&core, &client, &refresh, Some("refresh_token"), T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        introspect_at(&core, &client, &issued.access_token, T0 + 1).await,
        Introspection::Inactive
    );
    let refused = token(&core, &client, refresh_grant(&refresh, None), T0 + 2).await;
    assert_eq!(described(refused).1, "Refresh token has been revoked");
}

#[tokio::test]
async fn the_hint_only_orders_the_lookups() {
    let core = opaque_core();
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    // A wrong hint still finds the access token (RFC 7009 §2.1).
    revoke(
        &core,
        &client,
        &issued.access_token,
        Some("refresh_token"),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(
        introspect_at(&core, &client, &issued.access_token, T0).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn unknown_tokens_are_not_an_error_and_other_clients_tokens_are_refused() {
    let core = jwt_core();
    let owner = confidential(&core, "owner");
    let other = confidential(&core, "other");
    revoke(&core, &other, "no-such-token", None, T0)
        .await
        .unwrap();
    let issued = token(&core, &owner, client_credentials_grant(None), T0)
        .await
        .unwrap();
    let err = revoke(&core, &other, &issued.access_token, None, T0)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.description()),
        (
            "unauthorized_client",
            "The token was not issued to this client"
        )
    );
    active(introspect_at(&core, &owner, &issued.access_token, T0).await);
}

#[tokio::test]
async fn revocation_needs_an_authenticated_client_and_a_token() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    let stranger = ClientCredentials {
        client_id: "ghost".into(),
        client_secret: Some(Secret::new(SECRET)),
    };
    assert_eq!(
        revoke(&core, &stranger, "x", None, T0).await.unwrap_err(),
        OAuthError::InvalidClient
    );
    let err = revoke(&core, &client, "", None, T0).await.unwrap_err();
    assert_eq!(err.description(), "Missing required parameter: token");
}

#[tokio::test]
async fn a_client_past_its_revocation_bound_is_told_to_retry() {
    let mut core = jwt_core();
    core.revocation_limit = crate::oauth::revocation_limit::RevocationLimit::new(2);
    let client = confidential(&core, "svc");
    let mut refused = 0;
    for _ in 0..4 {
        let issued = token(&core, &client, client_credentials_grant(None), T0)
            .await
            .unwrap();
        match revoke(&core, &client, &issued.access_token, None, T0).await {
            Ok(()) => {}
            Err(err) => {
                assert_eq!(err.code(), "temporarily_unavailable");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 2);
    // The next second brings a fresh allowance.
    let issued = token(&core, &client, client_credentials_grant(None), T0 + 1)
        .await
        .unwrap();
    revoke(&core, &client, &issued.access_token, None, T0 + 1)
        .await
        .unwrap();
}
