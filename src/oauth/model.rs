//! Domain types of the protocol core. They are not database rows: `store/` maps
//! its sea-orm models onto these.

use std::fmt;
use std::str::FromStr;

use super::scope::ScopeSet;

/// Seconds since the Unix epoch. Only `clock.rs` reads the clock; the core gets
/// the current time as a parameter.
pub type UnixTime = i64;

/// The grant types this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3, the resource owner password credentials grant.
    Password,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.1, with PKCE (RFC 7636): a code from `/oauth/authorize`.
    AuthorizationCode,
    /// RFC 6749 §4.2: a token straight from `/oauth/authorize`, never from
    /// the token endpoint.
    Implicit,
}

impl GrantType {
    /// Every grant type, in the order discovery documents list them.
    pub const ALL: [GrantType; 5] = [
        Self::ClientCredentials,
        Self::Password,
        Self::RefreshToken,
        Self::AuthorizationCode,
        Self::Implicit,
    ];

    /// The `grant_type` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
            Self::AuthorizationCode => "authorization_code",
            Self::Implicit => "implicit",
        }
    }

    /// Whether the grant goes through `/oauth/authorize` and so needs a
    /// registered redirect URI (SPEC §7).
    pub fn redirects(self) -> bool {
        matches!(self, Self::AuthorizationCode | Self::Implicit)
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|grant| grant.as_str() == s)
            .ok_or_else(|| format!("unknown grant type {s:?}"))
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The public identifier, `client_id`.
    pub id: String,
    /// A human-readable name.
    pub name: String,
    /// SHA-256 of the secret, URL-safe base64; `None` for public clients.
    pub secret_hash: Option<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: ScopeSet,
    /// Access-token lifetime for this client, overriding the server's default.
    pub access_token_ttl: Option<i64>,
    /// Disabled clients cannot authenticate and their tokens introspect inactive.
    pub enabled: bool,
    /// Where `/oauth/authorize` may send the user back to (SPEC §7), exactly
    /// as registered.
    pub redirect_uris: Vec<String>,
    /// A first-party client whose users are never asked for consent.
    pub skip_consent: bool,
    /// Whether an authorization request must carry a PKCE challenge.
    pub pkce: PkceRule,
}

/// Whether a client's authorization requests must use PKCE (RFC 7636).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PkceRule {
    /// Every request carries an S256 challenge: the default, and the only
    /// rule a public client may have.
    #[default]
    Required,
    /// A confidential client may leave it out (its secret binds the code).
    Optional,
}

impl PkceRule {
    /// The `--pkce` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
        }
    }
}

impl FromStr for PkceRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            other => Err(format!("unknown PKCE rule {other:?}: required or optional")),
        }
    }
}

impl Client {
    /// A public client (RFC 6749 §2.1) has no secret and authenticates by id alone.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// Every scope some enabled client of `clients` may request, sorted, without
/// repeats: what discovery lists as `scopes_supported`.
pub fn scopes_of_enabled<'a>(clients: impl IntoIterator<Item = &'a Client>) -> Vec<String> {
    let mut scopes: Vec<String> = clients
        .into_iter()
        .filter(|client| client.enabled)
        .flat_map(|client| client.scopes.iter().map(str::to_owned))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// The longest access-token lifetime of `clients`, at least `default`.
pub fn longest_access_token_ttl<'a>(
    clients: impl IntoIterator<Item = &'a Client>,
    default: i64,
) -> i64 {
    clients
        .into_iter()
        .filter_map(|client| client.access_token_ttl)
        .fold(default, i64::max)
}

/// A resource owner who logs in with the password grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier; the `sub` of the user's tokens.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Optional email address, also accepted as the login.
    pub email: Option<String>,
    /// Optional phone number, also accepted as the login.
    pub phone: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The account state.
    pub status: UserStatus,
    /// Consecutive failed logins since the last success.
    pub failed_logins: i32,
}

/// What stops a user from logging in or keeps their tokens from being active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserStatus {
    /// Locked by an administrator or after too many failed logins.
    pub locked: bool,
    /// Disabled by an administrator.
    pub disabled: bool,
    /// The password must be changed before the next login.
    pub password_expired: bool,
}

impl UserStatus {
    /// Whether the user's tokens may be active (SPEC §5: not locked, not disabled).
    pub fn may_hold_tokens(&self) -> bool {
        !self.locked && !self.disabled
    }
}

/// A stored refresh token, found by the hash of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 of the token, URL-safe base64.
    pub token_hash: String,
    /// Every token descended from one original grant shares this id (RFC 9700 §4.14.2).
    pub family_id: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The resource owner, for tokens from the password grant.
    pub user_id: Option<String>,
    /// The resource owner's login name, for introspection.
    pub username: Option<String>,
    /// The scope of the access token issued with this refresh token.
    pub scope: ScopeSet,
    /// The scope of the original grant: a refresh may never go beyond it.
    pub grant_scope: ScopeSet,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// When it was exchanged; a used token presented again is a replay.
    pub used_at: Option<UnixTime>,
    /// Revoked explicitly or with its family.
    pub revoked: bool,
}

/// A refresh token about to be stored, with the access token issued beside it so
/// that revoking the family can also revoke that access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// The record itself (`used_at` none, `revoked` false).
    pub record: RefreshRecord,
    /// `jti` of the access token issued with it.
    pub access_jti: String,
    /// Expiry of that access token.
    pub access_expires_at: UnixTime,
}

/// What a refresh exchange decides before it reads the token it replaces: the
/// successor's own hash and lifetime, and the access token issued beside it.
/// Family, owner and scope carry over from the replaced token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSuccessor {
    /// SHA-256 of the new token, URL-safe base64.
    pub token_hash: String,
    /// When it is issued; the replaced token must not have expired by then.
    pub issued_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// `jti` of the access token issued with it.
    pub access_jti: String,
    /// Expiry of that access token.
    pub access_expires_at: UnixTime,
}

/// A stored opaque access token (`--token-format opaque`), found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueAccessRecord {
    /// SHA-256 of the token, URL-safe base64.
    pub token_hash: String,
    /// The facts the token stands for.
    pub claims: AccessClaims,
}

/// The facts an access token carries, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// Unique id of the token; revocations name it.
    pub jti: String,
    /// The issuer URL.
    pub iss: String,
    /// The user's id, or the client's id for `client_credentials`.
    pub sub: String,
    /// The audience.
    pub aud: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user's login name, for password-grant tokens.
    pub username: Option<String>,
    /// The user's id, for password-grant tokens.
    pub user_id: Option<String>,
    /// The granted scope.
    pub scope: ScopeSet,
    /// Issued at.
    pub iat: UnixTime,
    /// Not valid before.
    pub nbf: UnixTime,
    /// Expires at.
    pub exp: UnixTime,
}

/// An API key (SPEC §8): a static credential that acts as its client, with at
/// most the client's scopes. Only the hash of its value is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The public identifier that management commands name it by.
    pub key_id: String,
    /// SHA-256 of the key, URL-safe base64.
    pub key_hash: String,
    /// The client the key acts as.
    pub client_id: String,
    /// What the operator calls it.
    pub name: String,
    /// The scope it carries, within its client's when created.
    pub scope: ScopeSet,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it stops working; a rotation with an overlap brings it forward.
    pub expires_at: UnixTime,
    /// Revoked by an operator.
    pub revoked: bool,
    /// The key's last four characters, so that an operator can tell keys apart.
    pub hint: String,
}

/// An authorization code (SPEC §7), found by the hash of its `oac_` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// SHA-256 of the code, URL-safe base64.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who approved it.
    pub user_id: String,
    /// That user's login name, which the tokens carry.
    pub username: String,
    /// The `redirect_uri` the authorize request carried; `None` when it left
    /// it out, and then the token request may too (RFC 6749 §4.1.3).
    pub redirect_uri: Option<String>,
    /// The scope approved.
    pub scope: ScopeSet,
    /// The S256 `code_challenge` (RFC 7636), if the request had one.
    pub code_challenge: Option<String>,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// When it was redeemed; a redeemed code presented again is a replay.
    pub used_at: Option<UnixTime>,
    /// What its redemption issued, so that a replay can revoke it.
    pub issued: Option<CodeRedemption>,
}

/// What redeeming a code issued: the access token, and the refresh-token
/// family when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRedemption {
    /// `jti` of the access token.
    pub access_jti: String,
    /// When that access token expires.
    pub access_expires_at: UnixTime,
    /// The family of the refresh token, if one was issued.
    pub family_id: Option<String>,
}

/// A redemption of a code, as the store writes it in one step: the code and
/// every binding the token request presents, and what it issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRedemptionRequest {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client redeeming it.
    pub client_id: String,
    /// The redirect URI the code must be bound to (`None`: none).
    pub redirect_uri: Option<String>,
    /// The S256 challenge the code must carry (`None`: none).
    pub code_challenge: Option<String>,
    /// The access token issued (its `jti`, `issued_at` is the redemption's
    /// time) and the refresh token beside it, decided before the write.
    pub successor: RefreshSuccessor,
    /// The new refresh-token family, when the client gets a refresh token;
    /// `successor.token_hash` is then stored in it.
    pub family_id: Option<String>,
}

impl CodeRedemptionRequest {
    /// What the code records of its redemption.
    pub fn redemption(&self) -> CodeRedemption {
        CodeRedemption {
            access_jti: self.successor.access_jti.clone(),
            access_expires_at: self.successor.access_expires_at,
            family_id: self.family_id.clone(),
        }
    }

    /// The refresh token to store, for the redeemed `code`: the first of its
    /// family, with the code's user and whole scope.
    pub fn refresh_token(&self, code: &AuthorizationCodeRecord) -> Option<NewRefreshToken> {
        let family_id = self.family_id.clone()?;
        let successor = &self.successor;
        Some(NewRefreshToken {
            record: RefreshRecord {
                token_hash: successor.token_hash.clone(),
                family_id,
                client_id: code.client_id.clone(),
                user_id: Some(code.user_id.clone()),
                username: Some(code.username.clone()),
                scope: code.scope.clone(),
                grant_scope: code.scope.clone(),
                issued_at: successor.issued_at,
                expires_at: successor.expires_at,
                used_at: None,
                revoked: false,
            },
            access_jti: successor.access_jti.clone(),
            access_expires_at: successor.access_expires_at,
        })
    }
}

/// A browser login (SPEC §7), found by the hash of its cookie's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie's value, URL-safe base64.
    pub session_hash: String,
    /// Who logged in.
    pub user_id: String,
    /// When they logged in.
    pub created_at: UnixTime,
    /// When the session ends by itself (`--session-ttl`).
    pub expires_at: UnixTime,
}
