//! What servers keep in memory so that issuing and introspecting a JWT needs no
//! database round trip: clients, users who may not hold tokens, revoked token
//! ids, and the key ring; and, so that an API key or opaque token needs one lookup only,
//! what the database said of those asked about (`remembered.rs`). Each kind is
//! reloaded when its `state_version` counter moves (`changes.rs`); revocations
//! are read incrementally, only the rows stamped after the last counter value
//! seen, and remembered API keys are forgotten. What this server commits
//! itself on a request path (a revocation, a lockout) it also writes straight
//! into the cache, so that its own next request sees it without a reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::changes::{ChangeKind, KINDS, Versions};
use super::entities::{client, revocation, user};
use super::key_usage::KeyUsage;
use super::remembered::Remembered;
use super::revoked::RevokedSet;
use super::{SeaStore, bounded};
use crate::clock;
use crate::oauth::model::{ApiKeyRecord, Client, OpaqueAccessRecord, UnixTime, UserStatus};
use crate::oauth::storage::StoreError;
use crate::tokens::keys::{KeyMaterial, KeyRing};

/// Revocation rows read per query while syncing: a first load of many
/// thousands then holds only one page of rows at a time, never all of them.
const REVOCATION_PAGE: u64 = 512;

/// The counter value the cache starts from, and goes back to when it must read a
/// kind again: no counter is negative, so the next probe sees it moved.
const UNSEEN: i64 = -1;

/// How many API keys (or unknown `oak_` values) a server remembers.
const API_KEYS_REMEMBERED: usize = 4096;

/// How many opaque access tokens (or unknown values) a server remembers, as
/// many as verified JWTs (`server.rs`).
const OPAQUE_TOKENS_REMEMBERED: usize = 4096;

/// The in-memory view of the database.
pub(super) struct Cache {
    /// The counter of each kind as last loaded, by [`ChangeKind::index`].
    seen: [AtomicI64; KINDS],
    available: AtomicBool,
    clients: RwLock<Arc<HashMap<String, Arc<Client>>>>,
    /// Only users who are locked or disabled: everyone else may hold tokens, and
    /// keeping the few exceptions is far smaller than keeping every user.
    restricted_users: RwLock<RestrictedUsers>,
    /// Revoked `jti`s and when the token they name expires.
    revoked: RwLock<RevokedSet>,
    key_materials: Mutex<Vec<KeyMaterial>>,
    key_ring: RwLock<Arc<KeyRing>>,
    /// API keys by hash, forgotten whenever the API-keys counter moves.
    pub(super) api_keys: Remembered<ApiKeyRecord>,
    /// Opaque access tokens by hash. Their rows never change (a revocation
    /// goes to `revoked`, a client's or user's state is checked apart), so
    /// nothing needs forgetting.
    pub(super) opaque_tokens: Remembered<OpaqueAccessRecord>,
    /// When the API keys were last used, waiting to be written.
    pub(super) key_usage: KeyUsage,
}

/// The users who may not hold tokens, as last loaded and since changed by this
/// server itself.
#[derive(Default)]
struct RestrictedUsers {
    by_id: HashMap<String, UserStatus>,
    /// How many statuses this server has set itself ([`Cache::put_user_status`]).
    /// A reload that began before one of them may have read the database before
    /// that change committed: it must not replace the map.
    local_changes: u64,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            // The first probe loads every kind.
            seen: [const { AtomicI64::new(UNSEEN) }; KINDS],
            available: AtomicBool::new(false),
            clients: RwLock::default(),
            restricted_users: RwLock::default(),
            revoked: RwLock::default(),
            key_materials: Mutex::default(),
            key_ring: RwLock::default(),
            api_keys: Remembered::new(API_KEYS_REMEMBERED),
            opaque_tokens: Remembered::new(OPAQUE_TOKENS_REMEMBERED),
            key_usage: KeyUsage::default(),
        }
    }
}

/// Reads through a lock even if a writer panicked: the data is replaced whole,
/// never left half-written.
fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
}

impl Cache {
    fn seen(&self, kind: ChangeKind) -> i64 {
        self.seen[kind.index()].load(Ordering::Acquire)
    }

    fn set_seen(&self, kind: ChangeKind, version: i64) {
        self.seen[kind.index()].store(version, Ordering::Release);
    }

    pub(super) fn available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    pub(super) fn set_available(&self, up: bool) {
        self.available.store(up, Ordering::Release);
    }

    pub(super) fn client(&self, client_id: &str) -> Option<Arc<Client>> {
        self.clients
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(client_id)
            .cloned()
    }

    /// Updates one client (or forgets it) between full reloads.
    pub(super) fn put_client(&self, client_id: &str, client: Option<Arc<Client>>) {
        let mut clients = self
            .clients
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let map = Arc::make_mut(&mut clients);
        match client {
            Some(client) => map.insert(client_id.to_owned(), client),
            None => map.remove(client_id),
        };
    }

    pub(super) fn clients(&self) -> Arc<HashMap<String, Arc<Client>>> {
        read(&self.clients)
    }

    pub(super) fn user_status(&self, user_id: &str) -> UserStatus {
        self.restricted_users
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_id
            .get(user_id)
            .copied()
            .unwrap_or_default()
    }

    /// Records a user's status that this server has just committed, so that
    /// its own requests see it at once rather than after the next sync (a
    /// lockout must stop the user's tokens on the server that counted the last
    /// failure). The commit bumped the users counter, so every other server
    /// reloads its users.
    ///
    /// The counter the cache last loaded is forgotten, so that this server
    /// reloads them too on its next sync: a reload that ran after the commit
    /// but finished before this call may hold a later change of the same user,
    /// which this call just overwrote. The database has the last word within
    /// one sync interval, and no change of another user is skipped.
    pub(super) fn put_user_status(&self, user_id: &str, status: UserStatus) {
        let mut users = self
            .restricted_users
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if status.may_hold_tokens() {
            users.by_id.remove(user_id);
        } else {
            users.by_id.insert(user_id.to_owned(), status);
        }
        users.local_changes += 1;
        self.set_seen(ChangeKind::Users, UNSEEN);
    }

    /// Where a reload of the restricted users starts: pass it to
    /// [`Cache::install_restricted_users`] with what the reload read.
    fn restricted_users_mark(&self) -> u64 {
        self.restricted_users
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .local_changes
    }

    /// Replaces the restricted users with those read from the database at the
    /// users counter `version`, unless this server set a status itself since
    /// `mark`: the rows may predate that change, so they are dropped and the
    /// counter stays unseen, for the next sync to read them again.
    fn install_restricted_users(
        &self,
        by_id: HashMap<String, UserStatus>,
        version: i64,
        mark: u64,
    ) {
        let mut users = self
            .restricted_users
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if users.local_changes != mark {
            return;
        }
        users.by_id = by_id;
        // Under the lock, so that a concurrent `put_user_status` forgets the
        // counter after this, never before.
        self.set_seen(ChangeKind::Users, version);
    }

    pub(super) fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(jti)
    }

    /// How many revocations this server holds.
    pub(super) fn revoked_count(&self) -> usize {
        self.revoked
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Records revocations: those this process has just committed, so that its
    /// own next introspection sees them without waiting for the next sync, and
    /// those a sync read.
    pub(super) fn add_revoked<'a>(&self, revoked: impl IntoIterator<Item = (&'a str, UnixTime)>) {
        let mut set = self
            .revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (jti, expires_at) in revoked {
            set.insert(jti, expires_at);
        }
    }

    fn reserve_revoked(&self, additional: usize) {
        self.revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .reserve(additional);
    }

    fn prune_revoked(&self, now: UnixTime) {
        self.revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .prune_if_due(now);
    }

    pub(super) fn key_ring(&self) -> Arc<KeyRing> {
        read(&self.key_ring)
    }

    /// Replaces the key ring if the stored keys changed; parsing keys is the
    /// expensive part, so an unchanged set keeps its parsed ring.
    pub(super) fn set_keys(&self, materials: Vec<KeyMaterial>) -> Result<Arc<KeyRing>, StoreError> {
        let mut current = self
            .key_materials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *current != materials || self.key_ring().is_empty() {
            let ring = KeyRing::from_materials(&materials).map_err(super::error::other)?;
            write(&self.key_ring, Arc::new(ring));
            *current = materials;
        }
        Ok(self.key_ring())
    }
}

impl SeaStore {
    pub(super) fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// Reloads each kind whose counter in `versions` differs from the one
    /// cache last loaded; revocations only from the rows stamped since.
    pub(super) async fn reload(&self, versions: Versions) -> Result<(), StoreError> {
        let cache = self.cache();
        let moved = |kind| versions.get(kind) != cache.seen(kind);
        if moved(ChangeKind::Clients) {
            bounded(self.reload_clients()).await?;
            cache.set_seen(ChangeKind::Clients, versions.get(ChangeKind::Clients));
        }
        if moved(ChangeKind::Users) {
            let mark = cache.restricted_users_mark();
            let restricted = bounded(self.load_restricted_users()).await?;
            cache.install_restricted_users(restricted, versions.get(ChangeKind::Users), mark);
        }
        if moved(ChangeKind::Keys) {
            let materials = bounded(self.load_key_materials()).await?;
            cache.set_keys(materials)?;
            cache.set_seen(ChangeKind::Keys, versions.get(ChangeKind::Keys));
        }
        if moved(ChangeKind::ApiKeys) {
            // A revocation, a rotation, a deletion: whichever key it was, the
            // next check of any key reads the database again.
            cache.api_keys.forget_all();
            cache.set_seen(ChangeKind::ApiKeys, versions.get(ChangeKind::ApiKeys));
        }
        let now = clock::now();
        if moved(ChangeKind::Revocations) {
            self.sync_revocations(versions.get(ChangeKind::Revocations), now)
                .await?;
        }
        cache.prune_revoked(now);
        Ok(())
    }

    async fn reload_clients(&self) -> Result<(), StoreError> {
        let clients = client::Entity::find().all(self.db()).await?;
        let clients: HashMap<_, _> = clients
            .into_iter()
            .filter_map(|row| {
                let id = row.client_id.clone();
                match super::clients::to_domain(row) {
                    Ok(client) => Some((id, Arc::new(client))),
                    Err(err) => {
                        tracing::error!(client_id = %id, error = %err, "skipping unreadable client row");
                        None
                    }
                }
            })
            .collect();
        write(&self.cache().clients, Arc::new(clients));
        Ok(())
    }

    async fn load_restricted_users(&self) -> Result<HashMap<String, UserStatus>, StoreError> {
        Ok(user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::Locked.eq(true))
                    .add(user::Column::Disabled.eq(true)),
            )
            .all(self.db())
            .await?
            .into_iter()
            .map(|row| (row.id.clone(), super::users::status_of(&row)))
            .collect())
    }

    /// Adds the revocations stamped after the last counter value seen, up to
    /// `version`, the counter just read (why that misses none: see
    /// `changes::bump_returning`). Revocations are never undone, so entries
    /// are only added here; expired ones leave through the occasional prune.
    async fn sync_revocations(&self, version: i64, now: UnixTime) -> Result<(), StoreError> {
        let cache = self.cache();
        let mut last = cache.seen(ChangeKind::Revocations);
        if version < last {
            // The counter went back (a database restored from a backup, say):
            // the rows stamped from here on would look old. Read them all again.
            tracing::warn!(
                version,
                last,
                "the revocations counter went back; reloading every revocation"
            );
            last = -1;
        }
        // Pages in (seq, jti) order, which the (seq, jti) index serves: the
        // first page starts after `last`, each next one after the last row read.
        let mut cursor: Option<(i64, String)> = None;
        loop {
            let after = match &cursor {
                None => revocation::Column::Seq.gt(last),
                Some((seq, jti)) => Expr::tuple([
                    Expr::col(revocation::Column::Seq),
                    Expr::col(revocation::Column::Jti),
                ])
                .gt(Expr::tuple([Expr::val(*seq), Expr::val(jti.as_str())])),
            };
            let query = revocation::Entity::find()
                .select_only()
                .column(revocation::Column::Jti)
                .column(revocation::Column::ExpiresAt)
                .column(revocation::Column::Seq)
                .filter(after)
                .filter(revocation::Column::Seq.lte(version))
                .filter(revocation::Column::ExpiresAt.gt(now))
                .order_by_asc(revocation::Column::Seq)
                .order_by_asc(revocation::Column::Jti)
                .limit(REVOCATION_PAGE)
                .into_tuple()
                .all(self.db());
            let page: Vec<(String, i64, i64)> = bounded(async { Ok(query.await?) }).await?;
            let full = page.len() as u64 == REVOCATION_PAGE;
            if full && cursor.is_none() {
                // A large sync (a first load, say): size the table once
                // rather than through every doubling on the way.
                let count = revocation::Entity::find()
                    .filter(revocation::Column::Seq.gt(last))
                    .filter(revocation::Column::Seq.lte(version))
                    .filter(revocation::Column::ExpiresAt.gt(now))
                    .count(self.db());
                let rows = bounded(async { Ok(count.await?) }).await?;
                cache.reserve_revoked(usize::try_from(rows).unwrap_or(0));
            }
            cache.add_revoked(page.iter().map(|(jti, exp, _)| (jti.as_str(), *exp)));
            match page.into_iter().next_back() {
                Some((jti, _, seq)) if full => cursor = Some((seq, jti)),
                _ => break,
            }
        }
        cache.set_seen(ChangeKind::Revocations, version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked() -> UserStatus {
        UserStatus {
            locked: true,
            ..UserStatus::default()
        }
    }

    #[test]
    fn a_reload_that_began_before_a_local_lock_neither_undoes_it_nor_counts_as_seen() {
        let cache = Cache::default();
        cache.install_restricted_users(HashMap::new(), 6, cache.restricted_users_mark());
        assert_eq!(cache.seen(ChangeKind::Users), 6);

        let mark = cache.restricted_users_mark();
        cache.put_user_status("alice", locked());
        assert!(cache.user_status("alice").locked);
        // Rows read before the lock committed.
        cache.install_restricted_users(HashMap::new(), 7, mark);
        assert!(cache.user_status("alice").locked);
        assert_eq!(cache.seen(ChangeKind::Users), UNSEEN);

        // The next reload, begun after the lock, has the last word.
        let mark = cache.restricted_users_mark();
        cache.install_restricted_users(HashMap::new(), 8, mark);
        assert!(!cache.user_status("alice").locked);
        assert_eq!(cache.seen(ChangeKind::Users), 8);
    }

    #[test]
    fn a_local_change_after_a_reload_makes_the_next_sync_read_users_again() {
        let cache = Cache::default();
        let mark = cache.restricted_users_mark();
        cache.install_restricted_users(HashMap::new(), 9, mark);
        cache.put_user_status("alice", locked());
        assert_eq!(cache.seen(ChangeKind::Users), UNSEEN);
        cache.put_user_status("alice", UserStatus::default());
        assert!(!cache.user_status("alice").locked);
    }
}
