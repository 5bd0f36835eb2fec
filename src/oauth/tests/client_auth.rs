//! Client authentication (RFC 6749 §2.3).

use super::*;
use crate::oauth::client_auth::{authenticate, authenticate_confidential};

#[tokio::test]
async fn a_confidential_client_needs_its_secret() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    assert_eq!(authenticate(&core.store, &client).await.unwrap().id, "svc");
    let without = ClientCredentials {
        client_secret: None,
        ..client.clone()
    };
    assert_eq!(
        authenticate(&core.store, &without).await.unwrap_err(),
        OAuthError::InvalidClient
    );
    let empty = ClientCredentials {
        client_secret: Some(Secret::new("")),
        ..client
    };
    assert_eq!(
        authenticate(&core.store, &empty).await.unwrap_err(),
        OAuthError::InvalidClient
    );
}

#[tokio::test]
async fn a_public_client_presents_its_id_alone() {
    let core = jwt_core();
    let public = client_with(&core, "spa", &[GrantType::Password], "read", true);
    assert!(authenticate(&core.store, &public).await.is_ok());
    let with_secret = ClientCredentials {
        client_secret: Some(Secret::new(SECRET)),
        ..public.clone()
    };
    assert_eq!(
        authenticate(&core.store, &with_secret).await.unwrap_err(),
        OAuthError::InvalidClient
    );
    // Introspection is for confidential clients only.
    assert_eq!(
        authenticate_confidential(&core.store, &public)
            .await
            .unwrap_err(),
        OAuthError::InvalidClient
    );
}

#[tokio::test]
async fn an_empty_client_id_is_refused_without_a_lookup() {
    let core = jwt_core();
    let before = core.store.lookups();
    let nobody = ClientCredentials::default();
    assert_eq!(
        authenticate(&core.store, &nobody).await.unwrap_err(),
        OAuthError::InvalidClient
    );
    assert_eq!(core.store.lookups(), before);
}
