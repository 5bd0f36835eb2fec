//! Signing keys in the database: loading (and unsealing), first-start creation,
//! rotation, and the `KeyStore` the core reads.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::SeaStore;
use super::changes::{Announced, ChangeKind};
use super::entities::signing_key;
use super::error::other;
use super::retry::retrying;
use crate::oauth::model::UnixTime;
use crate::oauth::storage::{KeyStore, StoreError};
use crate::tokens::keys::{KeyMaterial, KeyRing, SigningAlg, generate};

/// A key as `keys list` shows it: never the private part.
#[derive(Debug, Clone)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: String,
    /// Generated at.
    pub created_at: UnixTime,
    /// Signs from.
    pub activates_at: UnixTime,
    /// Stops signing at.
    pub deactivated_at: Option<UnixTime>,
}

/// Forced reloads (a token naming an unknown `kid`) happen at most this often, so
/// forged tokens cannot turn into a flood of database queries.
const MIN_FORCED_RELOAD_GAP: Duration = Duration::from_millis(200);

impl SeaStore {
    /// Every stored key with its private part in the clear.
    pub(super) async fn load_key_materials(&self) -> Result<Vec<KeyMaterial>, StoreError> {
        let rows = signing_key::Entity::find()
            .order_by_asc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(self.db())
            .await?;
        rows.into_iter().map(|row| self.unseal(row)).collect()
    }

    fn unseal(&self, row: signing_key::Model) -> Result<KeyMaterial, StoreError> {
        let alg: SigningAlg = row
            .alg
            .parse()
            .map_err(|err: String| StoreError::Other(err.into()))?;
        let private = if row.sealed {
            let master = self.inner.master_key.as_ref().ok_or_else(|| {
                StoreError::Other(
                    format!(
                        "signing key {} is encrypted but no master key is configured (--master-key)",
                        row.kid
                    )
                    .into(),
                )
            })?;
            master.open(&row.kid, &row.private_key).map_err(other)?
        } else {
            row.private_key.into_bytes()
        };
        Ok(KeyMaterial {
            kid: row.kid,
            alg,
            private,
            created_at: row.created_at,
            activates_at: row.activates_at,
            deactivated_at: row.deactivated_at,
        })
    }

    fn seal(&self, material: &KeyMaterial) -> Result<signing_key::ActiveModel, StoreError> {
        let (private_key, sealed) = match &self.inner.master_key {
            Some(master) => (
                master
                    .seal(&material.kid, &material.private)
                    .map_err(other)?,
                true,
            ),
            None => (
                String::from_utf8(material.private.clone()).map_err(other)?,
                false,
            ),
        };
        Ok(signing_key::ActiveModel {
            kid: Set(material.kid.clone()),
            alg: Set(material.alg.as_str().to_owned()),
            private_key: Set(private_key),
            sealed: Set(sealed),
            created_at: Set(material.created_at),
            activates_at: Set(material.activates_at),
            deactivated_at: Set(material.deactivated_at),
        })
    }

    /// Makes sure a key signs `alg` tokens: on first start there is none, so one
    /// is generated and signs at once (no token can exist that needs an older key).
    pub async fn ensure_signing_key(
        &self,
        alg: SigningAlg,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let materials = self.load_key_materials().await?;
        let ring = self.cache().set_keys(materials)?;
        if ring.signing_key(alg, now).is_some() {
            return Ok(());
        }
        let material = generate_off_runtime(alg, now, now).await?;
        let row = self.seal(&material)?;
        retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Keys).await?;
            row.clone().insert(change.txn()).await?;
            change.commit().await
        })
        .await?;
        tracing::info!(kid = %material.kid, %alg, "generated signing key");
        self.sync_now().await
    }

    /// Adds a new `alg` key that is published now and signs from `now +
    /// publish_delay`, and retires the current keys at that same moment. Retired
    /// keys stay in the JWKS until the tokens they signed have expired.
    pub async fn rotate_keys(
        &self,
        alg: SigningAlg,
        now: UnixTime,
        publish_delay: i64,
    ) -> Result<KeyView, StoreError> {
        let rotated = self.rotate(alg, now, publish_delay, None).await?;
        rotated.ok_or_else(|| StoreError::Other("key rotation did not happen".into()))
    }

    /// Rotates when the key signing `alg` tokens has signed for `interval`
    /// seconds. Every replica runs this; the rotation retires the current key
    /// only if it is still current, so exactly one replica's rotation lands.
    pub async fn rotate_if_due(
        &self,
        alg: SigningAlg,
        now: UnixTime,
        interval: i64,
        publish_delay: i64,
    ) -> Result<Option<KeyView>, StoreError> {
        let ring = self.key_ring();
        let Some(current) = ring.signing_key(alg, now) else {
            return Ok(None);
        };
        let successor_pending = current.deactivated_at.is_some();
        if successor_pending || current.activates_at + interval > now {
            return Ok(None);
        }
        let kid = current.kid.clone();
        self.rotate(alg, now, publish_delay, Some(&kid)).await
    }

    /// Inserts a new key and retires either every current key or, with
    /// `only_if_current`, that one key if nobody retired it first.
    async fn rotate(
        &self,
        alg: SigningAlg,
        now: UnixTime,
        publish_delay: i64,
        only_if_current: Option<&str>,
    ) -> Result<Option<KeyView>, StoreError> {
        let activates_at = now + Ord::max(publish_delay, 0);
        let material = generate_off_runtime(alg, now, activates_at).await?;
        let row = self.seal(&material)?;
        // Only keys of the same algorithm retire: a CLI configured with another
        // algorithm must not leave servers without a key for theirs.
        let retire = signing_key::Entity::update_many()
            .col_expr(
                signing_key::Column::DeactivatedAt,
                Some(activates_at).into(),
            )
            .filter(signing_key::Column::Alg.eq(alg.as_str()));
        let retire = match only_if_current {
            // Strictly still current: a replica that lost the race finds the key
            // already retired and rotates nothing.
            Some(kid) => retire
                .filter(signing_key::Column::Kid.eq(kid))
                .filter(signing_key::Column::DeactivatedAt.is_null()),
            None => retire.filter(
                signing_key::Column::DeactivatedAt
                    .is_null()
                    .or(signing_key::Column::DeactivatedAt.gt(activates_at)),
            ),
        };
        let inserted = retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Keys).await?;
            let retired = retire.clone().exec(change.txn()).await?;
            if only_if_current.is_some() && retired.rows_affected != 1 {
                return Ok(None);
            }
            let row = row.clone().insert(change.txn()).await?;
            change.commit().await?;
            Ok(Some(row))
        })
        .await?;
        let Some(row) = inserted else {
            return Ok(None);
        };
        tracing::info!(kid = %row.kid, %alg, activates_at, "rotated signing key");
        Ok(Some(to_view(row)))
    }

    /// Checks every ten seconds whether the signing key is due for rotation,
    /// until `stop` fires.
    pub async fn rotate_on_schedule(
        self,
        alg: SigningAlg,
        interval: i64,
        publish_delay: i64,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            let now = crate::clock::now();
            if let Err(err) = self.rotate_if_due(alg, now, interval, publish_delay).await {
                tracing::warn!(error = %err, "scheduled key rotation failed");
            }
        }
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyView>, StoreError> {
        Ok(signing_key::Entity::find()
            .order_by_asc(signing_key::Column::CreatedAt)
            .order_by_asc(signing_key::Column::Kid)
            .all(self.db())
            .await?
            .into_iter()
            .map(to_view)
            .collect())
    }
}

fn to_view(row: signing_key::Model) -> KeyView {
    KeyView {
        kid: row.kid,
        alg: row.alg,
        created_at: row.created_at,
        activates_at: row.activates_at,
        deactivated_at: row.deactivated_at,
    }
}

async fn generate_off_runtime(
    alg: SigningAlg,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<KeyMaterial, StoreError> {
    tokio::task::spawn_blocking(move || generate(alg, now, activates_at))
        .await
        .map_err(other)?
        .map_err(other)
}

impl KeyStore for SeaStore {
    fn key_ring(&self) -> Arc<KeyRing> {
        self.cache().key_ring()
    }

    async fn reload_keys(&self) -> Result<Arc<KeyRing>, StoreError> {
        {
            let mut last = self.inner.last_forced_key_reload.lock().await;
            let now = crate::clock::instant();
            if last.is_some_and(|at| now.duration_since(at) < MIN_FORCED_RELOAD_GAP) {
                return Ok(self.key_ring());
            }
            *last = Some(now);
        }
        let materials = self.load_key_materials().await?;
        self.cache().set_keys(materials)
    }
}
