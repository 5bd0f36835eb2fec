//! API keys (SPEC §8): what a new or rotated key may be. The store keeps them
//! and the management commands call these rules; whether a presented key is
//! good now is the validator's to say (`validate.rs`).

use std::fmt;

use super::model::{ApiKeyRecord, Client, UnixTime};
use super::scope::ScopeSet;
use crate::tokens::credential::{CredentialKind, mint};
use crate::tokens::secret::{Secret, hash_secret, new_id};

/// A new key's lifetime unless `--expires-in` says otherwise: 90 days.
pub const DEFAULT_API_KEY_TTL: i64 = 90 * 86_400;

/// The longest lifetime `--api-key-max-ttl` allows by default: 365 days.
pub const DEFAULT_API_KEY_MAX_TTL: i64 = 365 * 86_400;

/// How many characters of the key `list` and `show` print.
const HINT_LEN: usize = 4;

/// What an operator asks for when creating a key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyRequest {
    /// What to call it; defaults to the client's name.
    pub name: Option<String>,
    /// Its scopes; defaults to every scope of the client.
    pub scopes: Option<ScopeSet>,
    /// Its lifetime in seconds; defaults to [`DEFAULT_API_KEY_TTL`].
    pub expires_in: Option<i64>,
}

/// A key about to be stored, and its value, which is shown once and then only
/// its hash is kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The `oak_` credential (SPEC §5).
    pub value: Secret,
    /// What the store keeps.
    pub record: ApiKeyRecord,
}

/// Why a key cannot be created as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyRefusal {
    /// A scope the client itself may not have.
    ScopeWiderThanClient(String),
    /// A lifetime of zero or less.
    LifetimeNotPositive(i64),
    /// A lifetime past `--api-key-max-ttl`.
    LifetimeTooLong {
        /// The lifetime asked for.
        asked: i64,
        /// The most allowed.
        max: i64,
    },
}

impl fmt::Display for ApiKeyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ScopeWiderThanClient(scope) => {
                write!(f, "scope {scope:?} is not among the client's scopes")
            }
            Self::LifetimeNotPositive(asked) => {
                write!(f, "--expires-in must be positive, not {asked}")
            }
            Self::LifetimeTooLong { asked, max } => write!(
                f,
                "--expires-in {asked} exceeds the longest lifetime allowed, {max} seconds (--api-key-max-ttl)"
            ),
        }
    }
}

impl std::error::Error for ApiKeyRefusal {}

/// A new key for `client` as `request` asks, at `now`; `max_ttl` is
/// `--api-key-max-ttl`. SPEC §8: "scopes wider than the client's are refused",
/// and the lifetime may not exceed the maximum.
pub fn new_api_key(
    client: &Client,
    request: ApiKeyRequest,
    max_ttl: i64,
    now: UnixTime,
) -> Result<NewApiKey, ApiKeyRefusal> {
    let scope = match request.scopes {
        Some(scopes) => {
            if let Some(outside) = scopes.first_outside(&client.scopes) {
                return Err(ApiKeyRefusal::ScopeWiderThanClient(outside.to_owned()));
            }
            scopes
        }
        None => client.scopes.clone(),
    };
    let ttl = request
        .expires_in
        .unwrap_or(DEFAULT_API_KEY_TTL.min(max_ttl));
    if ttl <= 0 {
        return Err(ApiKeyRefusal::LifetimeNotPositive(ttl));
    }
    if ttl > max_ttl {
        return Err(ApiKeyRefusal::LifetimeTooLong {
            asked: ttl,
            max: max_ttl,
        });
    }
    Ok(minted(
        &client.id,
        request.name.unwrap_or_else(|| client.name.clone()),
        scope,
        now,
        now.saturating_add(ttl),
    ))
}

/// What `apikey rotate` makes of `old`: a new key with the same client, name
/// and scopes and a fresh expiry (the old key's lifetime again, within
/// `max_ttl`), and the moment the old key stops, `overlap` seconds from now
/// (SPEC §8; 0 stops it at once) but never later than it would have anyway.
pub fn rotate_api_key(
    old: &ApiKeyRecord,
    overlap: i64,
    max_ttl: i64,
    now: UnixTime,
) -> (NewApiKey, UnixTime) {
    let lifetime = old
        .expires_at
        .saturating_sub(old.created_at)
        .clamp(1, max_ttl.max(1));
    let new = minted(
        &old.client_id,
        old.name.clone(),
        old.scope.clone(),
        now,
        now.saturating_add(lifetime),
    );
    let old_stops = now.saturating_add(overlap.max(0)).min(old.expires_at);
    (new, old_stops)
}

fn minted(
    client_id: &str,
    name: String,
    scope: ScopeSet,
    created_at: UnixTime,
    expires_at: UnixTime,
) -> NewApiKey {
    let value = mint(CredentialKind::ApiKey);
    let hint = value[value.len() - HINT_LEN..].to_owned();
    NewApiKey {
        record: ApiKeyRecord {
            key_id: new_id(),
            key_hash: hash_secret(&value),
            client_id: client_id.to_owned(),
            name,
            scope,
            created_at,
            expires_at,
            revoked: false,
            hint,
        },
        value: Secret::new(value),
    }
}
