//! The token endpoint's decisions (SPEC §4) for every grant.

use super::*;
use crate::oauth::grants::{GrantParameters, GrantParseError};

fn parsed(grant_type: &str) -> Result<GrantRequest, GrantParseError> {
    GrantRequest::parse(GrantParameters {
        grant_type: grant_type.into(),
        ..GrantParameters::default()
    })
}

#[tokio::test]
async fn client_credentials_issues_a_jwt_with_the_clients_whole_scope() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    assert_eq!(issued.scope.to_string(), "read write");
    assert_eq!(issued.expires_in, 3600);
    assert!(issued.refresh_token.is_none());
    assert_eq!(issued.access_token.split('.').count(), 3);
    // A JWT client_credentials token needs no storage write.
    assert!(core.store.opaque_records().is_empty());
}

#[tokio::test]
async fn client_credentials_is_refused_to_public_clients() {
    let core = jwt_core();
    let client = client_with(&core, "spa", &GrantType::ALL, "read", true);
    let refused = token(&core, &client, client_credentials_grant(None), T0).await;
    assert_eq!(described(refused).0, "unauthorized_client");
}

#[tokio::test]
async fn opaque_tokens_are_stored_only_as_hashes() {
    let core = opaque_core();
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(Some("read")), T0)
        .await
        .unwrap();
    let stored = core.store.opaque_records();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_hash, hash_secret(&issued.access_token));
    assert_ne!(stored[0].token_hash, issued.access_token);
    assert_eq!(stored[0].claims.scope.to_string(), "read");
}

#[tokio::test]
async fn a_client_ttl_overrides_the_default() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    let mut registered = (*core.store.client_now("svc")).clone();
    registered.access_token_ttl = Some(120);
    core.store.put_client(registered);
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    assert_eq!(issued.expires_in, 120);
}

#[tokio::test]
async fn password_grant_issues_a_refresh_token_when_the_client_may_refresh() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    assert!(issued.refresh_token.is_some());

    let no_refresh = client_with(&core, "cli", &[GrantType::Password], "read", false);
    let issued = login(&core, &no_refresh, "ann").await;
    assert!(issued.refresh_token.is_none());
}

#[tokio::test]
async fn password_grant_accepts_the_email_as_the_login() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    user(&core, "ann");
    token(
        &core,
        &client,
        password_grant("ann@example.com", PASSWORD),
        T0,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_spec_error_row_the_token_endpoint_decides() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let cc_only = client_with(&core, "cc", &[GrantType::ClientCredentials], "read", false);
    user(&core, "ann");
    let wrong_secret = ClientCredentials {
        client_secret: Some(Secret::new("nope")),
        ..client.clone()
    };
    let unknown = ClientCredentials {
        client_id: "ghost".into(),
        ..client.clone()
    };
    let cases: Vec<(
        ClientCredentials,
        Result<GrantRequest, GrantParseError>,
        &str,
        &str,
    )> = vec![
        (
            client.clone(),
            parsed(""),
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
        (
            client.clone(),
            parsed("password"),
            "invalid_request",
            "An authorization username must be supplied.",
        ),
        (
            client.clone(),
            Ok(password_grant("ann", "wrong")),
            "invalid_grant",
            "Bad credentials",
        ),
        (
            client.clone(),
            Ok(password_grant("nobody", PASSWORD)),
            "invalid_grant",
            "Bad credentials",
        ),
        (
            unknown,
            Ok(client_credentials_grant(None)),
            "invalid_client",
            "Bad client credentials",
        ),
        (
            wrong_secret,
            Ok(client_credentials_grant(None)),
            "invalid_client",
            "Bad client credentials",
        ),
        (
            cc_only.clone(),
            Ok(password_grant("ann", PASSWORD)),
            "unauthorized_client",
            "The client is not allowed to use the grant type password",
        ),
        (
            // Not allowed wins over incomplete, as before typed requests.
            cc_only,
            parsed("password"),
            "unauthorized_client",
            "The client is not allowed to use the grant type password",
        ),
        (
            client.clone(),
            parsed("implicit"),
            "unsupported_grant_type",
            "Unsupported grant type: implicit",
        ),
        (
            client.clone(),
            Ok(client_credentials_grant(Some("read admin"))),
            "invalid_scope",
            "Scope not allowed for this client: admin",
        ),
        (
            client.clone(),
            parsed("refresh_token"),
            "invalid_request",
            "Missing required parameter: refresh_token",
        ),
    ];
    for (credentials, grant, code, description) in cases {
        let request = TokenRequest {
            client: credentials,
            grant,
            origin: None,
        };
        let err = issue_token(&core, request, T0).await.unwrap_err();
        assert_eq!((err.code(), err.description()), (code, description));
    }
}

#[tokio::test]
async fn a_disabled_client_is_bad_client_credentials() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    let mut registered = (*core.store.client_now("svc")).clone();
    registered.enabled = false;
    core.store.put_client(registered);
    let refused = token(&core, &client, client_credentials_grant(None), T0).await;
    assert_eq!(
        described(refused),
        ("invalid_client", "Bad client credentials".into())
    );
}

#[tokio::test]
async fn a_missing_grant_type_is_reported_before_client_authentication() {
    let core = jwt_core();
    let request = TokenRequest {
        client: ClientCredentials::default(),
        grant: parsed(""),
        origin: None,
    };
    let err = issue_token(&core, request, T0).await.unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

#[tokio::test]
async fn an_unsupported_grant_is_reported_only_to_an_authenticated_client() {
    let core = jwt_core();
    let request = TokenRequest {
        client: ClientCredentials::default(),
        grant: parsed("implicit"),
        origin: None,
    };
    let err = issue_token(&core, request, T0).await.unwrap_err();
    assert_eq!(err.code(), "invalid_client");
}

#[tokio::test]
async fn an_unavailable_store_is_temporarily_unavailable() {
    let core = jwt_core();
    let client = confidential(&core, "svc");
    core.store.set_down(true);
    let refused = token(&core, &client, client_credentials_grant(None), T0).await;
    assert_eq!(described(refused).0, "temporarily_unavailable");
}

#[test]
fn grant_parameters_parse_into_exactly_one_variant_each() {
    let full = |grant_type: &str| GrantParameters {
        grant_type: grant_type.into(),
        scope: Some("  ".into()),
        username: Some("ann".into()),
        password: Some(Secret::new("pw")),
        refresh_token: Some(Secret::new("rt")),
        code: Some(Secret::new("code")),
        redirect_uri: Some(String::new()),
        code_verifier: None,
    };
    assert!(matches!(
        GrantRequest::parse(full("client_credentials")),
        Ok(GrantRequest::ClientCredentials { scope: None })
    ));
    assert!(matches!(
        GrantRequest::parse(full("password")),
        Ok(GrantRequest::Password { ref username, scope: None, .. }) if username == "ann"
    ));
    assert!(matches!(
        GrantRequest::parse(full("refresh_token")),
        Ok(GrantRequest::RefreshToken { scope: None, .. })
    ));
    assert!(matches!(
        GrantRequest::parse(full("authorization_code")),
        Ok(GrantRequest::AuthorizationCode {
            redirect_uri: None,
            code_verifier: None,
            ..
        })
    ));
    // RFC 6749 §4.2: the implicit grant never comes to the token endpoint.
    assert_eq!(
        GrantRequest::parse(full("implicit")).unwrap_err(),
        GrantParseError::Unsupported("implicit".into())
    );
    assert_eq!(
        GrantRequest::parse(full("")).unwrap_err(),
        GrantParseError::MissingGrantType
    );
    let no_username = GrantParameters {
        username: Some(String::new()),
        ..full("password")
    };
    assert!(matches!(
        GrantRequest::parse(no_username),
        Err(GrantParseError::Incomplete(GrantType::Password, _))
    ));
}
