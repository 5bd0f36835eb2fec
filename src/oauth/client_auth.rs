//! Client authentication (RFC 6749 §2.3): who is calling.

use std::sync::Arc;

use super::error::OAuthError;
use super::model::Client;
use super::presented::classify;
use super::storage::ClientStore;
use crate::tokens::credential::CredentialKind;
use crate::tokens::secret::{Secret, secret_matches};

/// The credentials a request carried, whichever way it carried them.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`; absent (or empty) for a public client.
    pub client_secret: Option<Secret>,
}

/// Authenticates the caller. A confidential client must present its secret; a
/// public client (RFC 6749 §2.1) presents its id alone. Every failure is the same
/// `invalid_client`, so the answer does not reveal which client ids exist.
pub async fn authenticate(
    store: &impl ClientStore,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    if credentials.client_id.is_empty() {
        return Err(OAuthError::InvalidClient);
    }
    // SPEC §5: a secret that cannot be one of ours (a mistyped `ocs_`
    // credential, another kind's value) is refused before the client is looked
    // up, so it cannot make this server reload a client from the database.
    if let Some(secret) = presented_secret(credentials)
        && !classify(secret).is_lookup_candidate_for(CredentialKind::ClientSecret)
    {
        return Err(OAuthError::InvalidClient);
    }
    let id = &credentials.client_id;
    let client = store.client(id).await?.ok_or(OAuthError::InvalidClient)?;
    if presents_valid_credentials(&client, credentials) {
        return Ok(client);
    }
    // Memory may predate a secret rotation or an enable; the database decides.
    match store.reload_client(id).await? {
        Some(fresh) if presents_valid_credentials(&fresh, credentials) => Ok(fresh),
        _ => Err(OAuthError::InvalidClient),
    }
}

/// The secret presented, if any: an empty one counts as none (RFC 6749 §3.1).
fn presented_secret(credentials: &ClientCredentials) -> Option<&str> {
    credentials
        .client_secret
        .as_ref()
        .map(Secret::expose)
        .filter(|secret| !secret.is_empty())
}

fn presents_valid_credentials(client: &Client, credentials: &ClientCredentials) -> bool {
    if !client.enabled {
        return false;
    }
    match (client.secret_hash.as_deref(), presented_secret(credentials)) {
        (None, None) => true,
        (Some(stored), Some(secret)) => secret_matches(secret, stored),
        (None, Some(_)) | (Some(_), None) => false,
    }
}

/// Authenticates a caller that must be confidential: introspection (RFC 7662 §2.1)
/// is for resource servers, which hold a secret.
pub async fn authenticate_confidential(
    store: &impl ClientStore,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    let client = authenticate(store, credentials).await?;
    if client.is_public() {
        return Err(OAuthError::InvalidClient);
    }
    Ok(client)
}
