//! The storage the protocol core needs, as small traits the core owns.
//! `store/` implements them with sea-orm; nothing here knows about a database.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::model::{
    ApiKeyRecord, AuthorizationCodeRecord, Client, CodeRedemptionRequest, NewRefreshToken,
    OpaqueAccessRecord, RefreshRecord, RefreshSuccessor, SessionRecord, UnixTime, User, UserStatus,
};
use super::scope::ScopeSet;
use crate::tokens::keys::KeyRing;

/// Why storage failed, in the terms the core cares about. Each kind keeps the
/// error that caused it, for the one log line at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database does not answer; the client may retry later.
    Unavailable(StoreCause),
    /// A uniqueness rule was broken.
    Conflict(StoreCause),
    /// Anything else.
    Other(StoreCause),
}

impl StoreError {
    /// What caused the failure.
    pub fn cause(&self) -> &StoreCause {
        match self {
            Self::Unavailable(cause) | Self::Conflict(cause) | Self::Other(cause) => cause,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(cause) => write!(f, "database unavailable: {cause}"),
            Self::Conflict(cause) => write!(f, "conflict: {cause}"),
            Self::Other(cause) => write!(f, "storage error: {cause}"),
        }
    }
}

impl Error for StoreError {
    /// The message already quotes the cause's own, so the chain goes on below
    /// the cause: a log of the whole chain names each error once. The cause
    /// itself is [`StoreError::cause`].
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause().error().source()
    }
}

/// The error beneath a [`StoreError`], kept whole; behind an `Arc`, so that
/// one failure can answer several waiting requests. Two causes are equal when
/// their messages are: that is what a log or a test sees, and the errors of a
/// database library rarely compare.
#[derive(Debug, Clone)]
pub struct StoreCause(Arc<dyn Error + Send + Sync>);

impl StoreCause {
    /// Keeps `err` as the cause.
    pub fn new(err: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(err))
    }

    /// The underlying error.
    pub fn error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// A cause that is only a message: nothing failed beneath it.
impl From<String> for StoreCause {
    fn from(message: String) -> Self {
        Self(Arc::from(Box::<dyn Error + Send + Sync>::from(message)))
    }
}

impl From<&str> for StoreCause {
    fn from(message: &str) -> Self {
        Self::from(message.to_owned())
    }
}

impl fmt::Display for StoreCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for StoreCause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StoreCause {}

/// Whether the database answered its latest probe.
pub trait Availability: Send + Sync {
    /// `false` while the database does not answer; the core then refuses work that
    /// would need it rather than hand out tokens it could not later revoke.
    fn database_available(&self) -> bool;
}

/// Registered clients.
pub trait ClientStore: Send + Sync {
    /// The client with this id, if any: from memory (at most a second behind the
    /// database), or from the database for a client memory does not hold yet.
    fn client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Client>>, StoreError>> + Send;

    /// The client as the database has it now, refreshing memory; used when a
    /// presented secret does not match memory, which may predate a rotation.
    fn reload_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<Client>>, StoreError>> + Send;
}

/// Resource owners for the password grant.
pub trait UserStore: Send + Sync {
    /// The user whose username, email or phone is `login`, in that order of preference.
    fn find_user_by_login(
        &self,
        login: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Counts a failed login and locks the user once `lock_after` failures in a row
    /// are reached; one atomic statement each, so concurrent failures all count.
    fn record_failed_login(
        &self,
        user_id: &str,
        lock_after: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user with this id, if any, as the database has it now.
    fn find_user_by_id(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Resets the failure count after a successful login.
    fn reset_failed_logins(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The status of a user whose tokens are being introspected or refreshed, from
    /// memory at most a second behind the database.
    fn user_status(&self, user_id: &str) -> UserStatus;
}

/// Refresh tokens, with single use enforced by the database.
pub trait RefreshTokenStore: Send + Sync {
    /// Stores a new refresh token (the first of its family).
    fn insert_refresh(
        &self,
        token: &NewRefreshToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The refresh token with this hash, if any.
    fn find_refresh(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// Marks `used_hash` used and stores `next`, atomically. Returns `false`, with
    /// nothing written, when the token was already used or revoked: whoever marks
    /// it first wins, across every replica.
    fn rotate_refresh(
        &self,
        used_hash: &str,
        now: UnixTime,
        next: &NewRefreshToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the live refresh token `used_hash` of `client_id` with
    /// `successor` in one step, keeping its family, its owner and its whole
    /// granted scope, and returns the successor's record. Live means unused,
    /// unrevoked, unexpired at `successor.issued_at`, and of no user who is
    /// locked or disabled. `None` means nothing was written: the token is not
    /// live, or the store has no one-step exchange. The caller then takes the
    /// checked path (`find_refresh`, `rotate_refresh`), which also says why.
    fn exchange_refresh(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> impl Future<Output = Result<Option<RefreshRecord>, StoreError>> + Send;

    /// Revokes every refresh token of the family and every access token issued
    /// with them. Returns whether anything was written: `false` when the family
    /// was revoked already.
    fn revoke_family(
        &self,
        family_id: &str,
        now: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Access-token state: opaque tokens and revocations.
pub trait AccessTokenStore: Send + Sync {
    /// Stores an opaque access token by its hash.
    fn insert_opaque(
        &self,
        token: &OpaqueAccessRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The opaque access token with this hash, if any.
    fn find_opaque(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<OpaqueAccessRecord>, StoreError>> + Send;

    /// Records that the access token `jti` is revoked until it expires. Returns
    /// whether that was written: `false` when it was revoked already.
    fn revoke_access(
        &self,
        jti: &str,
        expires_at: UnixTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether `jti` is revoked, from memory kept at most a second behind.
    fn is_revoked(&self, jti: &str) -> bool;
}

/// The published signing keys.
pub trait KeyStore: Send + Sync {
    /// The current key ring, at most a second behind the database.
    fn key_ring(&self) -> Arc<KeyRing>;

    /// Reloads the key ring now; called when a token names an unknown key, which
    /// another replica may have just started using.
    fn reload_keys(&self) -> impl Future<Output = Result<Arc<KeyRing>, StoreError>> + Send;
}

/// API keys (SPEC §8), as the validator needs them.
pub trait ApiKeyStore: Send + Sync {
    /// The API key with this hash, if any. The store answers a key it has
    /// already seen from memory, and keeps that memory no more than a second
    /// behind a revocation, a rotation or a change of its client anywhere
    /// (SPEC §9: repeated checks read no database).
    fn find_api_key(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<ApiKeyRecord>, StoreError>> + Send;

    /// Revokes the key `key_id`, on every server within a second. Returns
    /// whether that was written: `false` when it was revoked already.
    fn revoke_api_key(&self, key_id: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Notes that the key `key_id` was accepted at `now`. Never a write per
    /// call: the store keeps `last_used_at` accurate to a minute (SPEC §8).
    fn api_key_used(&self, key_id: &str, now: UnixTime);
}

/// Authorization codes (SPEC §7), with single use enforced by the database.
pub trait AuthorizationCodeStore: Send + Sync {
    /// Stores a new code by its hash.
    fn insert_code(
        &self,
        code: &AuthorizationCodeRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The code with this hash, if any, used or not.
    fn find_code(
        &self,
        code_hash: &str,
    ) -> impl Future<Output = Result<Option<AuthorizationCodeRecord>, StoreError>> + Send;

    /// Redeems the code in one step when it is unused and unexpired at
    /// `successor.issued_at`, of `client_id`, bound to exactly `redirect_uri`
    /// and `code_challenge`, and its user is neither locked nor disabled: marks
    /// it used, records what it issued, and stores the refresh token (when
    /// `family_id` is set) with the code's user and scope, in one transaction.
    /// Returns the code as it was. `None` means nothing was written: the
    /// checked path (`find_code`) then says why. Whoever marks a code first
    /// wins, across every replica.
    fn redeem_code(
        &self,
        request: &CodeRedemptionRequest,
    ) -> impl Future<Output = Result<Option<AuthorizationCodeRecord>, StoreError>> + Send;
}

/// Browser login sessions (SPEC §7).
pub trait SessionStore: Send + Sync {
    /// Stores a new session by its hash.
    fn insert_session(
        &self,
        session: &SessionRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session with this hash, if any, expired or not.
    fn find_session(
        &self,
        session_hash: &str,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Ends the session with this hash; nothing happens if there is none.
    fn delete_session(
        &self,
        session_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Remembered consent (SPEC §7): the scopes a user approved for a client.
pub trait ConsentStore: Send + Sync {
    /// What `user_id` has approved for `client_id`, if anything.
    fn consented_scope(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<ScopeSet>, StoreError>> + Send;

    /// Remembers that `user_id` approved `scope` for `client_id`, replacing
    /// what was remembered (the caller passes the union).
    fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &ScopeSet,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What the discovery documents (RFC 8414 metadata, the JWKS) say about the
/// registered clients, from memory.
pub trait ClientCatalog: Send + Sync {
    /// Every scope some enabled client may request, sorted, without repeats.
    fn known_scopes(&self) -> Vec<String>;

    /// The longest access-token lifetime any client has, at least `default`:
    /// how long a retired signing key must stay published.
    fn longest_access_token_ttl(&self, default: i64) -> i64;
}

/// Everything the core needs, in one bound.
pub trait Stores:
    Availability
    + ClientStore
    + UserStore
    + RefreshTokenStore
    + AccessTokenStore
    + ApiKeyStore
    + AuthorizationCodeStore
    + SessionStore
    + ConsentStore
    + KeyStore
    + 'static
{
}

impl<T> Stores for T where
    T: Availability
        + ClientStore
        + UserStore
        + RefreshTokenStore
        + AccessTokenStore
        + ApiKeyStore
        + AuthorizationCodeStore
        + SessionStore
        + ConsentStore
        + KeyStore
        + 'static
{
}
