//! The purge of expired rows (SPEC §10): by every server in the background
//! (the janitor) and by `oauthd purge`.
//!
//! A row goes once its own `expires_at` has passed, and not before: a used
//! refresh token or code stays until then, so that a replay is still
//! recognised (and revokes what it issued). Nothing the servers hold in memory
//! changes with a purge: every expired credential is refused already, so no
//! change counter moves.
//!
//! The purge must never stall token requests. It deletes in batches of
//! [`PURGE_BATCH`] rows, one short statement each, and rests after each batch
//! for as long as the batch took, so that it holds SQLite's one writer at most
//! half the time. On PostgreSQL a batch skips rows another transaction has
//! locked instead of waiting for them.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::watch;

use super::SeaStore;
use super::retry::retrying;
use crate::clock;
use crate::oauth::model::UnixTime;
use crate::oauth::storage::StoreError;

/// The janitor's default interval, seconds: expired rows are harmless, so
/// they may wait a few minutes.
pub const DEFAULT_PURGE_INTERVAL_SECONDS: u64 = 600;

/// Rows deleted per statement: small enough that one batch holds the writer
/// for a few milliseconds. With 500, a refresh waiting behind a batch on
/// SQLite saw its p99 rise by tens of milliseconds (bench/purge.sh).
pub const PURGE_BATCH: u64 = 200;

/// The longest rest between two batches.
const MAX_REST: Duration = Duration::from_millis(100);

/// Rows purged, by kind (`/metrics`).
const PURGED_METRIC: &str = "oauthd_purged_rows_total";

/// A table with expiring rows: the kind of its rows, as `oauthd purge` and
/// `/metrics` name it, the table, and its primary key.
struct Expiring {
    kind: &'static str,
    table: &'static str,
    key: &'static str,
}

/// Every table with rows that expire.
const EXPIRING: [Expiring; 6] = [
    Expiring {
        kind: "authorization_code",
        table: "authorization_codes",
        key: "code_hash",
    },
    Expiring {
        kind: "session",
        table: "sessions",
        key: "session_hash",
    },
    Expiring {
        kind: "api_key",
        table: "api_keys",
        key: "key_id",
    },
    Expiring {
        kind: "refresh_token",
        table: "refresh_tokens",
        key: "token_hash",
    },
    Expiring {
        kind: "access_token",
        table: "access_tokens",
        key: "token_hash",
    },
    Expiring {
        kind: "revocation",
        table: "revocations",
        key: "jti",
    },
];

/// What a purge removed: rows by kind, every kind present.
pub type Purged = BTreeMap<&'static str, u64>;

impl Expiring {
    /// One batch: at most `PURGE_BATCH` rows that expired by `now`.
    fn batch(&self, backend: DbBackend, now: UnixTime) -> Statement {
        let Self { table, key, .. } = self;
        let sql = match backend {
            DbBackend::Postgres => format!(
                "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} \
WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            _ => format!(
                "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} \
WHERE expires_at <= ? LIMIT ?)"
            ),
        };
        Statement::from_sql_and_values(backend, sql, [now.into(), (PURGE_BATCH as i64).into()])
    }
}

impl SeaStore {
    /// Deletes every row that expired by `now`, batch by batch, and counts them
    /// in `/metrics`.
    pub async fn purge_expired(&self, now: UnixTime) -> Result<Purged, StoreError> {
        let mut purged = Purged::new();
        for expiring in &EXPIRING {
            let mut rows = 0;
            loop {
                let started = tokio::time::Instant::now();
                let deleted = self.purge_batch(expiring, now).await?;
                rows += deleted;
                metrics::counter!(PURGED_METRIC, "kind" => expiring.kind).increment(deleted);
                if deleted < PURGE_BATCH {
                    break;
                }
                tokio::time::sleep(started.elapsed().min(MAX_REST)).await;
            }
            purged.insert(expiring.kind, rows);
        }
        Ok(purged)
    }

    async fn purge_batch(&self, expiring: &Expiring, now: UnixTime) -> Result<u64, StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            let statement = expiring.batch(turn.db().get_database_backend(), now);
            Ok(turn.db().execute_raw(statement).await?.rows_affected())
        })
        .await
    }

    /// The janitor: purges every `interval`, until `stop`. The first purge
    /// comes at a random point of the first interval, and each later one
    /// within a tenth of `interval` of its time, so that replicas started
    /// together do not purge together.
    pub async fn purge_forever(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        let mut wait = interval.mul_f64(rand::rng().random_range(0.0..1.0));
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if self.cache().available() {
                match self.purge_expired(clock::now()).await {
                    Ok(purged) => {
                        let rows: u64 = purged.values().sum();
                        if rows > 0 {
                            tracing::info!(?purged, "purged expired rows");
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "purging expired rows failed"),
                }
            }
            wait = interval.mul_f64(rand::rng().random_range(0.9..1.1));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::oauth::model::{GrantType, NewRefreshToken, PkceRule, RefreshRecord};
    use crate::oauth::scope::ScopeSet;
    use crate::oauth::storage::RefreshTokenStore as _;
    use crate::store::ClientSpec;
    use crate::tokens::secret::new_id;

    const NOW: UnixTime = 1_800_000_000;

    async fn store_with_client(dir: &tempfile::TempDir) -> (SeaStore, String) {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SeaStore::open(&url, 4, None).await.unwrap();
        let spec = ClientSpec {
            name: "app".into(),
            grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
            scopes: ScopeSet::parse("read").unwrap(),
            access_token_ttl: None,
            public: false,
            redirect_uris: Vec::new(),
            skip_consent: false,
            pkce: PkceRule::Required,
        };
        let client = store.create_client(spec, NOW).await.unwrap().client.id;
        (store, client)
    }

    fn refresh_token(client_id: &str, expires_at: UnixTime) -> NewRefreshToken {
        let record = RefreshRecord {
            token_hash: new_id(),
            family_id: new_id(),
            client_id: client_id.into(),
            user_id: None,
            username: None,
            scope: ScopeSet::parse("read").unwrap(),
            grant_scope: ScopeSet::parse("read").unwrap(),
            issued_at: NOW - 100,
            expires_at,
            used_at: None,
            revoked: false,
        };
        NewRefreshToken {
            record,
            access_jti: new_id(),
            access_expires_at: NOW - 50,
        }
    }

    async fn stored(store: &SeaStore, client_id: &str, expires_at: UnixTime) -> String {
        let token = refresh_token(client_id, expires_at);
        store.insert_refresh(&token).await.unwrap();
        token.record.token_hash
    }

    #[tokio::test]
    async fn purge_takes_every_expired_row_over_several_batches_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client) = store_with_client(&dir).await;
        let expired = 2 * PURGE_BATCH + 7;
        for n in 0..expired {
            // Some expire exactly now: a token is dead at its expiry.
            stored(&store, &client, NOW - (n % 2) as i64).await;
        }
        let live = stored(&store, &client, NOW + 1).await;
        // Used, but not yet expired: kept, so that a replay is recognised.
        let used = stored(&store, &client, NOW + 3600).await;
        let successor = refresh_token(&client, NOW + 3600);
        assert!(store.rotate_refresh(&used, NOW, &successor).await.unwrap());

        let purged = store.purge_expired(NOW).await.unwrap();
        assert_eq!(purged["refresh_token"], expired);
        assert_eq!(purged.len(), EXPIRING.len());
        assert!(
            purged
                .iter()
                .all(|(kind, n)| *kind == "refresh_token" || *n == 0)
        );
        assert!(store.find_refresh(&live).await.unwrap().is_some());
        let kept = store.find_refresh(&used).await.unwrap().unwrap();
        assert!(kept.used_at.is_some());

        let again = store.purge_expired(NOW).await.unwrap();
        assert!(again.values().all(|n| *n == 0), "{again:?}");
    }
}
