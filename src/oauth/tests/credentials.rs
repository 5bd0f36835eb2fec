//! Prefixed credentials (SPEC §5): a credential whose checksum fails is
//! refused before any lookup. The in-memory store counts its calls, so each
//! test can tell that only the caller's own authentication reached it.

use super::*;
use crate::oauth::revoke::revoke;
use crate::tokens::credential::{CREDENTIAL_LEN, CredentialKind, mint};

/// `value` with its last checksum character changed.
fn altered(value: &str) -> String {
    let last = value.as_bytes()[CREDENTIAL_LEN - 1];
    let other = if last == b'0' { '1' } else { '0' };
    format!("{}{other}", &value[..CREDENTIAL_LEN - 1])
}

/// Store calls made by `call`.
async fn lookups_of<T>(core: &TestCore, call: impl std::future::Future<Output = T>) -> (T, usize) {
    let before = core.store.lookups();
    let result = call.await;
    (result, core.store.lookups() - before)
}

#[tokio::test]
async fn new_credentials_carry_their_kind_prefix() {
    let core = opaque_core();
    let client = confidential(&core, "web");
    user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    assert!(
        issued.access_token.starts_with("oat_"),
        "{}",
        issued.access_token
    );
    let refresh = issued.refresh_token.unwrap();
    assert!(refresh.starts_with("ort_"), "{refresh}");
    assert_eq!(refresh.len(), CREDENTIAL_LEN);
}

#[tokio::test]
async fn an_altered_refresh_token_is_refused_without_a_lookup() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    user(&core, "ann");
    let refresh = login(&core, &client, "ann").await.refresh_token.unwrap();
    let bad = altered(&refresh);
    let (result, calls) =
        lookups_of(&core, token(&core, &client, refresh_grant(&bad, None), T0)).await;
    assert_eq!(described(result).1, "Refresh token is invalid");
    assert_eq!(calls, 1, "only the client's authentication");
    // An access token presented as a refresh token is refused the same way.
    let access = mint(CredentialKind::AccessToken);
    let (result, calls) = lookups_of(
        &core,
        token(&core, &client, refresh_grant(&access, None), T0),
    )
    .await;
    assert_eq!(described(result).1, "Refresh token is invalid");
    assert_eq!(calls, 1);
    // The genuine one still works.
    token(&core, &client, refresh_grant(&refresh, None), T0 + 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn altered_tokens_introspect_inactive_and_revoke_as_unknown_without_a_lookup() {
    let core = opaque_core();
    let client = confidential(&core, "svc");
    let issued = token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    let bad = altered(&issued.access_token);
    let (answer, calls) = lookups_of(&core, introspect_at(&core, &client, &bad, T0)).await;
    assert_eq!(answer, Introspection::Inactive);
    assert_eq!(calls, 1, "only the caller's authentication");
    let (result, calls) = lookups_of(&core, revoke(&core, &client, &bad, None, T0)).await;
    result.unwrap();
    assert_eq!(calls, 1);
    active(introspect_at(&core, &client, &issued.access_token, T0).await);
}

#[tokio::test]
async fn an_altered_client_secret_is_refused_before_the_client_is_looked_up() {
    let core = jwt_core();
    let secret = mint(CredentialKind::ClientSecret);
    let mut client = confidential(&core, "svc");
    let mut registered = (*core.store.client_now("svc")).clone();
    registered.secret_hash = Some(hash_secret(&secret));
    core.store.put_client(registered);
    client.client_secret = Some(Secret::new(secret.clone()));
    token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    client.client_secret = Some(Secret::new(altered(&secret)));
    let (result, calls) = lookups_of(
        &core,
        token(&core, &client, client_credentials_grant(None), T0),
    )
    .await;
    assert_eq!(
        described(result),
        ("invalid_client", "Bad client credentials".into())
    );
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn legacy_unprefixed_values_are_still_looked_up() {
    let core = jwt_core();
    // SECRET has the shape releases before SPEC §5 issued: 43 URL-safe characters.
    let client = confidential(&core, "svc");
    token(&core, &client, client_credentials_grant(None), T0)
        .await
        .unwrap();
    let legacy_refresh = crate::tokens::secret::new_secret();
    let (result, calls) = lookups_of(
        &core,
        token(&core, &client, refresh_grant(&legacy_refresh, None), T0),
    )
    .await;
    assert_eq!(described(result).1, "Refresh token is invalid");
    assert!(calls > 1, "a legacy value is looked up");
}
