//! What servers keep in memory so that issuing and introspecting a JWT needs no
//! database round trip: clients, users who may not hold tokens, revoked token
//! ids, and the key ring. Reloaded whenever `state_version` moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::entities::{client, revocation, user};
use super::{SeaStore, classify};
use crate::clock;
use crate::oauth::model::{Client, UnixTime, UserStatus};
use crate::oauth::storage::StoreError;
use crate::tokens::keys::{KeyMaterial, KeyRing};

/// The in-memory view of the database.
pub(super) struct Memory {
    version: AtomicI64,
    available: AtomicBool,
    clients: RwLock<Arc<HashMap<String, Arc<Client>>>>,
    /// Only users who are locked or disabled: everyone else may hold tokens, and
    /// keeping the few exceptions is far smaller than keeping every user.
    restricted_users: RwLock<Arc<HashMap<String, UserStatus>>>,
    /// Revoked `jti`s and when the token they name expires.
    revoked: RwLock<HashMap<String, UnixTime>>,
    key_materials: Mutex<Vec<KeyMaterial>>,
    key_ring: RwLock<Arc<KeyRing>>,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            // No database version is negative, so the first probe always loads.
            version: AtomicI64::new(-1),
            available: AtomicBool::new(false),
            clients: RwLock::default(),
            restricted_users: RwLock::default(),
            revoked: RwLock::default(),
            key_materials: Mutex::default(),
            key_ring: RwLock::default(),
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

impl Memory {
    pub(super) fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
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
            .get(user_id)
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(jti)
    }

    /// Records revocations this process has just committed, so that its own next
    /// introspection sees them without waiting for the next reload.
    pub(super) fn add_revoked(&self, revoked: impl IntoIterator<Item = (String, UnixTime)>) {
        let mut set = self
            .revoked
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        set.extend(revoked);
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
            let ring = KeyRing::from_materials(&materials)
                .map_err(|err| StoreError::Other(err.to_string()))?;
            write(&self.key_ring, Arc::new(ring));
            *current = materials;
        }
        Ok(self.key_ring())
    }
}

impl SeaStore {
    pub(super) fn memory(&self) -> &Memory {
        &self.inner.memory
    }

    /// Loads everything the memory holds and records `version` as seen.
    pub(super) async fn reload(&self, version: i64) -> Result<(), StoreError> {
        let db = &self.inner.db;
        let now = clock::now();
        let clients = client::Entity::find().all(db).await.map_err(classify)?;
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
        let restricted = user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::Locked.eq(true))
                    .add(user::Column::Disabled.eq(true)),
            )
            .all(db)
            .await
            .map_err(classify)?
            .into_iter()
            .map(|row| (row.id.clone(), super::users::status_of(&row)))
            .collect();
        let mut revoked: HashMap<String, UnixTime> = revocation::Entity::find()
            .filter(revocation::Column::ExpiresAt.gt(now))
            .all(db)
            .await
            .map_err(classify)?
            .into_iter()
            .map(|row| (row.jti, row.expires_at))
            .collect();
        let materials = self.load_key_materials().await?;
        self.memory().set_keys(materials)?;

        write(&self.memory().clients, Arc::new(clients));
        write(&self.memory().restricted_users, Arc::new(restricted));
        {
            // Revocations are never undone, so entries added by this process while
            // the load ran are kept; only expired ones leave.
            let mut current = self
                .memory()
                .revoked
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            revoked.extend(current.drain().filter(|(_, exp)| *exp > now));
            *current = revoked;
        }
        self.memory().version.store(version, Ordering::Release);
        Ok(())
    }
}
