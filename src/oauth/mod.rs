//! The protocol core: who gets which token, and when a token is still good.
//!
//! Architecture invariant: nothing here knows about tonic, axum, sea-orm, sockets
//! or files. The core reads and writes through the traits of [`storage`] and
//! takes the current time as a parameter.

pub mod api_keys;
pub mod authorize;
pub(crate) mod check;
pub(crate) mod client_address;
pub mod client_auth;
pub(crate) mod echo;
pub mod error;
pub mod grants;
pub mod introspect;
mod issuance;
pub mod login_throttle;
pub mod model;
pub mod pkce;
pub mod presented;
pub mod redirect_uri;
pub mod registration;
pub mod revocation_limit;
pub(crate) mod revoke;
pub mod scope;
pub mod sessions;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
pub(crate) mod user_auth;
pub(crate) mod validate;

/// For `crate::fuzzing` only: how introspection reads verified JWT claims.
#[cfg(feature = "fuzzing")]
pub(crate) use issuance::from_jwt_claims;

use self::login_throttle::LoginThrottle;
use self::revocation_limit::RevocationLimit;
use crate::tokens::jwt::VerifiedTokens;
use crate::tokens::keys::SigningAlg;
use crate::tokens::password::PasswordVerifier;

/// Whether access tokens are JWTs or opaque values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// RFC 9068 JWTs, verifiable without a database.
    Jwt,
    /// Random values stored as hashes; only introspection can read them.
    Opaque,
}

/// The settings the protocol rules depend on.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    /// Default access-token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_ttl: i64,
    /// Seconds after a refresh token's use in which its client presenting it
    /// again is refused without revoking the family; 0 revokes on every replay.
    pub refresh_token_reuse_grace: i64,
    /// Access-token format.
    pub token_format: TokenFormat,
    /// Algorithm of new JWTs.
    pub signing_alg: SigningAlg,
    /// Consecutive failed logins that lock a user; 0 never locks.
    pub lock_after_failed_logins: u32,
    /// Seconds an authorization code stays redeemable (SPEC §7).
    pub authorization_code_ttl: i64,
    /// Seconds a browser login session lasts (SPEC §7).
    pub session_ttl: i64,
}

/// The protocol core: the storage it works on, the policy, and the password
/// verifier. Built once; the gRPC service holds it in an `Arc`.
pub struct Core<S> {
    /// Storage, behind the core's own traits.
    pub store: S,
    /// The rules' settings.
    pub policy: Policy,
    /// Checks user passwords off the runtime.
    pub passwords: PasswordVerifier,
    /// JWTs whose signature was already checked.
    pub verified_jwts: VerifiedTokens,
    /// Failed logins by client address; every login path asks it first.
    pub login_throttle: LoginThrottle,
    /// How many revocations each client may write per second here.
    pub revocation_limit: RevocationLimit,
}
