//! An in-memory implementation of the core's storage traits, so that the core's
//! rules can be tested without a database or a server: every grant, every error
//! the core decides, introspection, revocation, rotation and replay. Time is a
//! parameter of the core, so expiry tests move `now` instead of sleeping.
//!
//! It keeps the same promises the sea-orm store keeps (single use of refresh
//! tokens, whole-family revocation, a lock after `lock_after` failures) with one
//! mutex over everything, and it counts the lookups it answers, so a test can
//! show that a request was refused without touching storage.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::login_throttle::{LoginThrottle, ThrottlePolicy};
use super::model::{
    ApiKeyRecord, AuthorizationCodeRecord, Client, CodeRedemptionRequest, NewRefreshToken,
    OpaqueAccessRecord, RefreshRecord, RefreshSuccessor, SessionRecord, UnixTime, User, UserStatus,
};
use super::revocation_limit::RevocationLimit;
use super::scope::ScopeSet;
use super::storage::{
    AccessTokenStore, ApiKeyStore, AuthorizationCodeStore, Availability, ClientStore, ConsentStore,
    KeyStore, RefreshTokenStore, SessionStore, StoreError, UserStore,
};
use super::{Core, Policy, TokenFormat};
use crate::tokens::jwt::VerifiedTokens;
use crate::tokens::keys::{KeyMaterial, KeyRing, SigningAlg, generate};
use crate::tokens::password::PasswordVerifier;

/// The store. Cheap to share: tests hold it through `Core::store`.
#[derive(Default)]
pub(crate) struct MemoryStore {
    state: Mutex<State>,
    key_ring: Mutex<Arc<KeyRing>>,
    down: AtomicBool,
    key_reload_fails: AtomicBool,
    lookups: AtomicUsize,
    rival_write: Mutex<Option<RivalWrite>>,
}

/// A change to a refresh token made by another request, landing at the next
/// rotation (see [`MemoryStore::before_next_rotation`]).
type RivalWrite = Box<dyn FnOnce(&mut RefreshRecord) + Send>;

#[derive(Default)]
struct State {
    clients: HashMap<String, Arc<Client>>,
    users: Vec<User>,
    refresh: HashMap<String, Stored>,
    opaque: HashMap<String, OpaqueAccessRecord>,
    revoked: HashSet<String>,
    api_keys: HashMap<String, ApiKeyRecord>,
    api_key_uses: Vec<(String, UnixTime)>,
    codes: HashMap<String, AuthorizationCodeRecord>,
    sessions: HashMap<String, SessionRecord>,
    consents: HashMap<(String, String), ScopeSet>,
}

/// A refresh token with the access token issued beside it.
#[derive(Clone)]
struct Stored {
    record: RefreshRecord,
    access_jti: String,
}

impl MemoryStore {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a lookup, or fails it while the database is "down".
    fn lookup(&self) -> Result<(), StoreError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("the test store is down".into()));
        }
        Ok(())
    }

    /// How many lookups and writes the store has answered or refused so far.
    pub(crate) fn lookups(&self) -> usize {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Makes every call fail as an unreachable database does, or recover.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Has another request change the rotated token just before the next
    /// `rotate_refresh` writes: a rival that used or revoked it between this
    /// request's read and its write.
    pub(crate) fn before_next_rotation(
        &self,
        change: impl FnOnce(&mut RefreshRecord) + Send + 'static,
    ) {
        *self
            .rival_write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Box::new(change));
    }

    /// Makes reloading the key ring fail, as when the database blinks.
    pub(crate) fn set_key_reload_fails(&self, fails: bool) {
        self.key_reload_fails.store(fails, Ordering::Relaxed);
    }

    /// Adds or replaces a client.
    pub(crate) fn put_client(&self, client: Client) {
        self.state()
            .clients
            .insert(client.id.clone(), Arc::new(client));
    }

    /// Removes a client, as `client delete` does.
    pub(crate) fn delete_client(&self, client_id: &str) {
        self.state().clients.remove(client_id);
    }

    /// Adds a user.
    pub(crate) fn put_user(&self, user: User) {
        let mut state = self.state();
        state.users.retain(|known| known.id != user.id);
        state.users.push(user);
    }

    /// Changes a user's status, as `user lock` or `user disable` do.
    pub(crate) fn set_user_status(&self, user_id: &str, status: UserStatus) {
        if let Some(user) = self.state().users.iter_mut().find(|u| u.id == user_id) {
            user.status = status;
        }
    }

    /// The user with this id, as stored now.
    pub(crate) fn user(&self, user_id: &str) -> Option<User> {
        self.state().users.iter().find(|u| u.id == user_id).cloned()
    }

    /// Every stored refresh token.
    pub(crate) fn refresh_records(&self) -> Vec<RefreshRecord> {
        self.state()
            .refresh
            .values()
            .map(|stored| stored.record.clone())
            .collect()
    }

    /// Every stored authorization code.
    pub(crate) fn code_records(&self) -> Vec<AuthorizationCodeRecord> {
        self.state().codes.values().cloned().collect()
    }

    /// Every stored opaque access token.
    pub(crate) fn opaque_records(&self) -> Vec<OpaqueAccessRecord> {
        self.state().opaque.values().cloned().collect()
    }

    /// Replaces the key ring.
    pub(crate) fn set_key_ring(&self, ring: KeyRing) {
        *self
            .key_ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(ring);
    }
}

impl Availability for MemoryStore {
    fn database_available(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }
}

impl ClientStore for MemoryStore {
    async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.lookup()?;
        Ok(self.state().clients.get(client_id).cloned())
    }

    async fn reload_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        self.client(client_id).await
    }
}

impl UserStore for MemoryStore {
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        self.lookup()?;
        let state = self.state();
        let by = |pick: fn(&User) -> Option<&str>| {
            state.users.iter().find(|user| pick(user) == Some(login))
        };
        Ok(by(|u| Some(u.username.as_str()))
            .or_else(|| by(|u| u.email.as_deref()))
            .or_else(|| by(|u| u.phone.as_deref()))
            .cloned())
    }

    async fn record_failed_login(&self, user_id: &str, lock_after: u32) -> Result<(), StoreError> {
        self.lookup()?;
        if let Some(user) = self.state().users.iter_mut().find(|u| u.id == user_id) {
            user.failed_logins += 1;
            if lock_after > 0 && i64::from(user.failed_logins) >= i64::from(lock_after) {
                user.status.locked = true;
            }
        }
        let mut state = self.state();
        let locked = state
            .users
            .iter()
            .any(|user| user.id == user_id && user.status.locked);
        if locked {
            state
                .sessions
                .retain(|_, session| session.user_id != user_id);
        }
        Ok(())
    }

    async fn find_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.lookup()?;
        Ok(self.user(user_id))
    }

    async fn reset_failed_logins(&self, user_id: &str) -> Result<(), StoreError> {
        self.lookup()?;
        if let Some(user) = self.state().users.iter_mut().find(|u| u.id == user_id) {
            user.failed_logins = 0;
        }
        Ok(())
    }

    fn user_status(&self, user_id: &str) -> UserStatus {
        self.user(user_id)
            .map(|user| user.status)
            .unwrap_or_default()
    }
}

impl RefreshTokenStore for MemoryStore {
    async fn insert_refresh(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        self.lookup()?;
        let stored = Stored {
            record: token.record.clone(),
            access_jti: token.access_jti.clone(),
        };
        let mut state = self.state();
        if state.refresh.contains_key(&token.record.token_hash) {
            return Err(StoreError::Conflict("refresh token hash".into()));
        }
        state
            .refresh
            .insert(token.record.token_hash.clone(), stored);
        Ok(())
    }

    async fn find_refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.lookup()?;
        Ok(self
            .state()
            .refresh
            .get(token_hash)
            .map(|stored| stored.record.clone()))
    }

    async fn rotate_refresh(
        &self,
        used_hash: &str,
        now: UnixTime,
        next: &NewRefreshToken,
    ) -> Result<bool, StoreError> {
        self.lookup()?;
        let rival = self
            .rival_write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let mut state = self.state();
        let Some(used) = state.refresh.get_mut(used_hash) else {
            return Ok(false);
        };
        if let Some(rival) = rival {
            rival(&mut used.record);
        }
        if used.record.used_at.is_some() || used.record.revoked {
            return Ok(false);
        }
        used.record.used_at = Some(now);
        state.refresh.insert(
            next.record.token_hash.clone(),
            Stored {
                record: next.record.clone(),
                access_jti: next.access_jti.clone(),
            },
        );
        Ok(true)
    }

    async fn exchange_refresh(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        self.lookup()?;
        let mut state = self.state();
        let Some(used) = state.refresh.get(used_hash).map(|s| s.record.clone()) else {
            return Ok(None);
        };
        let owner_allowed = used.user_id.as_deref().is_none_or(|id| {
            state
                .users
                .iter()
                .find(|u| u.id == id)
                .is_some_and(|u| u.status.may_hold_tokens())
        });
        let live = used.client_id == client_id
            && used.used_at.is_none()
            && !used.revoked
            && used.expires_at > successor.issued_at
            && owner_allowed;
        if !live {
            return Ok(None);
        }
        let record = RefreshRecord {
            token_hash: successor.token_hash.clone(),
            scope: used.grant_scope.clone(),
            issued_at: successor.issued_at,
            expires_at: successor.expires_at,
            used_at: None,
            revoked: false,
            ..used
        };
        if let Some(used) = state.refresh.get_mut(used_hash) {
            used.record.used_at = Some(successor.issued_at);
        }
        state.refresh.insert(
            record.token_hash.clone(),
            Stored {
                record: record.clone(),
                access_jti: successor.access_jti.clone(),
            },
        );
        Ok(Some(record))
    }

    async fn revoke_family(&self, family_id: &str, _now: UnixTime) -> Result<bool, StoreError> {
        self.lookup()?;
        let mut state = self.state();
        let mut written = false;
        let mut access = Vec::new();
        for stored in state.refresh.values_mut() {
            if stored.record.family_id == family_id {
                written |= !stored.record.revoked;
                stored.record.revoked = true;
                access.push(stored.access_jti.clone());
            }
        }
        for jti in access {
            written |= state.revoked.insert(jti);
        }
        Ok(written)
    }
}

impl AccessTokenStore for MemoryStore {
    async fn insert_opaque(&self, token: &OpaqueAccessRecord) -> Result<(), StoreError> {
        self.lookup()?;
        self.state()
            .opaque
            .insert(token.token_hash.clone(), token.clone());
        Ok(())
    }

    async fn find_opaque(
        &self,
        token_hash: &str,
    ) -> Result<Option<OpaqueAccessRecord>, StoreError> {
        self.lookup()?;
        Ok(self.state().opaque.get(token_hash).cloned())
    }

    async fn revoke_access(&self, jti: &str, _expires_at: UnixTime) -> Result<bool, StoreError> {
        self.lookup()?;
        Ok(self.state().revoked.insert(jti.to_owned()))
    }

    fn is_revoked(&self, jti: &str) -> bool {
        self.state().revoked.contains(jti)
    }
}

impl MemoryStore {
    /// Adds or replaces an API key, as `apikey create` and `rotate` do.
    pub(crate) fn put_api_key(&self, record: ApiKeyRecord) {
        self.state()
            .api_keys
            .insert(record.key_hash.clone(), record);
    }

    /// Every use of a key noted so far: its id and when.
    pub(crate) fn api_key_uses(&self) -> Vec<(String, UnixTime)> {
        self.state().api_key_uses.clone()
    }
}

impl ApiKeyStore for MemoryStore {
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.lookup()?;
        Ok(self.state().api_keys.get(key_hash).cloned())
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError> {
        self.lookup()?;
        let mut state = self.state();
        let key = state.api_keys.values_mut().find(|key| key.key_id == key_id);
        Ok(key.is_some_and(|key| !std::mem::replace(&mut key.revoked, true)))
    }

    fn api_key_used(&self, key_id: &str, now: UnixTime) {
        self.state().api_key_uses.push((key_id.to_owned(), now));
    }
}

impl KeyStore for MemoryStore {
    fn key_ring(&self) -> Arc<KeyRing> {
        Arc::clone(
            &self
                .key_ring
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    async fn reload_keys(&self) -> Result<Arc<KeyRing>, StoreError> {
        self.lookup()?;
        if self.key_reload_fails.load(Ordering::Relaxed) {
            // Not `Unavailable`: a key that cannot be read is no outage, and
            // must still not make a token look invalid.
            return Err(StoreError::Other("a stored key does not unseal".into()));
        }
        Ok(self.key_ring())
    }
}

/// The policy core tests run under, at `now` = [`T0`].
pub(crate) fn test_policy(token_format: TokenFormat, signing_alg: SigningAlg) -> Policy {
    Policy {
        issuer: "https://auth.test".into(),
        audience: "https://auth.test".into(),
        access_token_ttl: 3600,
        refresh_token_ttl: 86_400,
        refresh_token_reuse_grace: 0,
        token_format,
        signing_alg,
        lock_after_failed_logins: 3,
        authorization_code_ttl: 60,
        session_ttl: 86_400,
    }
}

/// The clock's reading when a core test starts.
pub(crate) const T0: UnixTime = 1_800_000_000;

/// A signing key of `alg`, active since before [`T0`].
pub(crate) fn test_key(alg: SigningAlg) -> KeyMaterial {
    generate(alg, T0 - 10, T0 - 10).unwrap()
}

/// A core over a fresh [`MemoryStore`] with one active signing key of
/// `signing_alg`, and the login throttle off (core tests log in faster than
/// people; the throttle has tests of its own).
pub(crate) fn test_core(token_format: TokenFormat, signing_alg: SigningAlg) -> Core<MemoryStore> {
    test_core_with_keys(token_format, signing_alg, &[test_key(signing_alg)])
}

/// [`test_core`] with the given signing keys, so that two cores can share them
/// as replicas sharing a database do.
pub(crate) fn test_core_with_keys(
    token_format: TokenFormat,
    signing_alg: SigningAlg,
    keys: &[KeyMaterial],
) -> Core<MemoryStore> {
    let store = MemoryStore::default();
    store.set_key_ring(KeyRing::from_materials(keys).unwrap());
    Core {
        store,
        policy: test_policy(token_format, signing_alg),
        passwords: PasswordVerifier::new(1, 16).unwrap(),
        verified_jwts: VerifiedTokens::new(64),
        login_throttle: LoginThrottle::new(ThrottlePolicy {
            max_failures: 0,
            max_concurrent: 0,
            ..ThrottlePolicy::default()
        }),
        revocation_limit: RevocationLimit::new(0),
    }
}

impl MemoryStore {
    /// The client as stored now; panics if unknown (tests only).
    pub(crate) fn client_now(&self, client_id: &str) -> Arc<Client> {
        self.state()
            .clients
            .get(client_id)
            .cloned()
            .unwrap_or_else(|| panic!("no client {client_id}"))
    }
}

impl super::storage::ClientCatalog for MemoryStore {
    fn known_scopes(&self) -> Vec<String> {
        super::model::scopes_of_enabled(self.state().clients.values().map(|client| &**client))
    }

    fn longest_access_token_ttl(&self, default: i64) -> i64 {
        let state = self.state();
        super::model::longest_access_token_ttl(
            state.clients.values().map(|client| &**client),
            default,
        )
    }
}

impl AuthorizationCodeStore for MemoryStore {
    async fn insert_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError> {
        self.lookup()?;
        self.state()
            .codes
            .insert(code.code_hash.clone(), code.clone());
        Ok(())
    }

    async fn find_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.lookup()?;
        Ok(self.state().codes.get(code_hash).cloned())
    }

    async fn redeem_code(
        &self,
        request: &CodeRedemptionRequest,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        self.lookup()?;
        let now = request.successor.issued_at;
        let mut state = self.state();
        let user_may = |user_id: &str| {
            state
                .users
                .iter()
                .any(|user| user.id == user_id && user.status.may_hold_tokens())
        };
        let live = state.codes.get(&request.code_hash).is_some_and(|code| {
            code.used_at.is_none()
                && code.expires_at > now
                && code.client_id == request.client_id
                && code.redirect_uri == request.redirect_uri
                && code.code_challenge == request.code_challenge
                && user_may(&code.user_id)
        });
        if !live {
            return Ok(None);
        }
        let Some(code) = state.codes.get_mut(&request.code_hash) else {
            return Ok(None);
        };
        let before = code.clone();
        code.used_at = Some(now);
        code.issued = Some(request.redemption());
        if let Some(token) = request.refresh_token(&before) {
            state.refresh.insert(
                token.record.token_hash.clone(),
                Stored {
                    record: token.record.clone(),
                    access_jti: token.access_jti.clone(),
                },
            );
        }
        Ok(Some(before))
    }
}

impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.lookup()?;
        self.state()
            .sessions
            .insert(session.session_hash.clone(), session.clone());
        Ok(())
    }

    async fn find_session(&self, session_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.lookup()?;
        Ok(self.state().sessions.get(session_hash).cloned())
    }

    async fn delete_session(&self, session_hash: &str) -> Result<(), StoreError> {
        self.lookup()?;
        self.state().sessions.remove(session_hash);
        Ok(())
    }
}

impl ConsentStore for MemoryStore {
    async fn consented_scope(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ScopeSet>, StoreError> {
        self.lookup()?;
        let key = (user_id.to_owned(), client_id.to_owned());
        Ok(self.state().consents.get(&key).cloned())
    }

    async fn remember_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &ScopeSet,
        _now: UnixTime,
    ) -> Result<(), StoreError> {
        self.lookup()?;
        let key = (user_id.to_owned(), client_id.to_owned());
        self.state().consents.insert(key, scope.clone());
        Ok(())
    }
}
