//! Storage on sea-orm: the only place with database queries.
//!
//! `SeaStore` implements the core's traits (`oauth::storage`). Whatever the hot
//! paths read (clients, locked or disabled users, revocations, signing keys) is
//! held in memory ([`cache::Cache`]); an API key or opaque token is looked up
//! once and then remembered ([`remembered`]): a key until the API-keys counter
//! moves, a token until it expires. Each kind has its own `state_version`
//! counter ([`changes`]), which a background task checks four times a second:
//! a kind whose counter moved is reloaded, revocations only from the rows
//! newer than the last seen, so a change made by any process reaches every
//! replica well within one second.
//!
//! The same entities, queries and migrations serve SQLite and PostgreSQL.

mod api_keys;
mod cache;
mod changes;
mod checkpoint;
mod clients;
mod codes;
mod connect;
mod consents;
pub(crate) mod entities;
mod error;
mod exchange;
mod key_usage;
mod keys;
mod purge;
mod remembered;
mod retry;
mod revoked;
mod sessions;
mod tokens;
mod users;
mod write_queue;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

pub use api_keys::ApiKeyView;
pub use clients::{ClientSpec, ClientUpdate, ClientView};
pub use keys::KeyView;
pub use purge::{DEFAULT_PURGE_INTERVAL_SECONDS, PURGE_BATCH, Purged};
pub use users::{UserChange, UserSpec};

use self::cache::Cache;
use self::checkpoint::CheckpointSignal;
use self::codes::RedemptionQueue;
use self::exchange::ExchangeQueue;
use crate::oauth::storage::StoreError;
use crate::tokens::master_key::MasterKey;

/// How often servers check the database for changes (and that it answers).
pub const SYNC_INTERVAL: Duration = Duration::from_millis(250);

/// How long after a committed change every healthy server has reloaded it: a
/// poll interval for the next probe to see it, a second one as margin for the
/// reload itself and for scheduling delays.
pub const PROPAGATION_TIME: Duration = Duration::from_millis(600);

/// How long a database probe may take before the database counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection-pool figures for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Idle connections.
    pub idle: usize,
    /// Whether the database answered its latest probe.
    pub available: bool,
}

/// The sea-orm store. Cheap to clone.
#[derive(Clone)]
pub struct SeaStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    database_url: String,
    cache: Cache,
    master_key: Option<Arc<MasterKey>>,
    last_forced_key_reload: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// Held by one probe-and-reload at a time: the sync task and other callers
    /// of [`SeaStore::sync_now`] may overlap, and the cache's view of each counter
    /// must only move forward.
    reload_turn: tokio::sync::Mutex<()>,
    /// SQLite only: the connection writes go through, one at a time (see
    /// [`SeaStore::write_turn`]).
    sqlite_writer: Option<SqliteWriter>,
}

struct SqliteWriter {
    db: DatabaseConnection,
    turn: tokio::sync::Mutex<()>,
    /// Refresh exchanges waiting to be written together.
    exchanges: ExchangeQueue,
    /// Code redemptions waiting to be written together.
    redemptions: RedemptionQueue,
    /// Wakes the task that checkpoints the WAL after writes.
    checkpoints: CheckpointSignal,
}

impl Drop for SqliteWriter {
    // The checkpoint task wakes, finds the store gone, and ends.
    fn drop(&mut self) {
        self.checkpoints.wake();
    }
}

/// A turn to write: the connection to write on, held until dropped.
pub(crate) struct WriteTurn<'a> {
    db: &'a DatabaseConnection,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl WriteTurn<'_> {
    /// The connection to write on.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        self.db
    }
}

impl SeaStore {
    /// Wraps a migrated database. On SQLite, `sqlite_writer` is a pool of one
    /// connection on the same file that all writes go through, and a task
    /// checkpoints the WAL after writes (`checkpoint.rs`).
    fn new(
        db: DatabaseConnection,
        sqlite_writer: Option<DatabaseConnection>,
        database_url: &str,
        master_key: Option<Arc<MasterKey>>,
    ) -> Self {
        let checkpoints = CheckpointSignal::default();
        let inner = Arc::new(Inner {
            db,
            database_url: database_url.to_owned(),
            cache: Cache::default(),
            master_key,
            last_forced_key_reload: tokio::sync::Mutex::default(),
            reload_turn: tokio::sync::Mutex::default(),
            sqlite_writer: sqlite_writer.map(|db| SqliteWriter {
                db,
                turn: tokio::sync::Mutex::default(),
                exchanges: ExchangeQueue::default(),
                redemptions: RedemptionQueue::default(),
                checkpoints: checkpoints.clone(),
            }),
        });
        if inner.sqlite_writer.is_some() {
            checkpoint::spawn(Arc::downgrade(&inner), checkpoints);
        }
        Self { inner }
    }

    /// Connects to `url`, applies pending migrations and wraps the result. Call
    /// [`SeaStore::sync_now`] before serving.
    pub async fn open(
        url: &str,
        max_connections: u32,
        master_key: Option<Arc<MasterKey>>,
    ) -> Result<Self, StoreError> {
        let db = connect::connect(url, max_connections).await?;
        connect::migrate(&db).await?;
        let sqlite_writer = connect::connect_sqlite_writer(url).await?;
        Ok(Self::new(db, sqlite_writer, url, master_key))
    }

    /// Waits for this process's turn to write, on SQLite; on PostgreSQL there is
    /// no turn to take. SQLite lets one connection write at a time, and a
    /// connection that finds the database locked retries on a sleep schedule
    /// that reaches 100 ms per step, so writers of one process contending
    /// through SQLite make long tails. Queuing them here instead hands the
    /// write lock over without sleeping. (Other processes, such as the CLI,
    /// still meet SQLite's busy timeout.) Writing on one connection also keeps
    /// its page cache valid: SQLite drops a connection's cache whenever another
    /// connection has written, and reads every page back from the file.
    pub(crate) async fn write_turn(&self) -> WriteTurn<'_> {
        match &self.inner.sqlite_writer {
            Some(writer) => {
                let turn = writer.turn.lock().await;
                writer.checkpoints.wake();
                WriteTurn {
                    db: &writer.db,
                    _turn: Some(turn),
                }
            }
            None => WriteTurn {
                db: &self.inner.db,
                _turn: None,
            },
        }
    }

    /// Writes a batch of queued writes (`write_queue.rs`) with
    /// [`retry::retrying`]. The first try runs in `turn`, which the drain took
    /// before its batch so that writes arriving meanwhile joined the batch; a
    /// retry waits for a turn anew, not holding one while it sleeps.
    async fn retrying_batch<'a, T, Write>(
        &'a self,
        turn: WriteTurn<'a>,
        mut write: impl FnMut(&'a DatabaseConnection) -> Write,
    ) -> Result<T, StoreError>
    where
        Write: Future<Output = Result<T, StoreError>>,
    {
        let db = turn.db;
        let mut held = Some(turn);
        retry::retrying(|| {
            let held = held.take();
            // Not polled until the turn is taken.
            let statement = write(db);
            async move {
                let _turn = match held {
                    Some(turn) => turn,
                    None => self.write_turn().await,
                };
                statement.await
            }
        })
        .await
    }

    /// SQLite only: the queue of code redemptions (see `codes.rs`).
    fn redemptions(&self) -> Option<&RedemptionQueue> {
        self.inner
            .sqlite_writer
            .as_ref()
            .map(|writer| &writer.redemptions)
    }

    /// SQLite only: the queue of refresh exchanges (see `exchange.rs`).
    fn exchanges(&self) -> Option<&ExchangeQueue> {
        self.inner
            .sqlite_writer
            .as_ref()
            .map(|writer| &writer.exchanges)
    }

    /// The connection, for management commands.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The pool's size and idle connections, and whether the database answered
    /// its latest probe; for metrics.
    pub fn pool_stats(&self) -> PoolStats {
        let db = &self.inner.db;
        let (size, idle) = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolStats {
            size,
            idle,
            available: self.cache().available(),
        }
    }

    /// Syncs the cache with the database now, as [`SeaStore::sync_forever`] does on
    /// every tick: probes the database and reloads each kind whose counter
    /// moved. Returns an error, and marks the database unavailable, when it
    /// does not answer.
    pub async fn sync_now(&self) -> Result<(), StoreError> {
        let outcome = self.probe_and_reload().await;
        self.inner.cache.set_available(outcome.is_ok());
        outcome
    }

    /// Each query has [`PROBE_TIMEOUT`] to answer, rather than the whole
    /// reload: a first sync of many revocations reads them a page at a time,
    /// and may take longer than that in all without the database being down.
    async fn probe_and_reload(&self) -> Result<(), StoreError> {
        let _turn = self.inner.reload_turn.lock().await;
        let versions = bounded(connect::probe(&self.inner.db, &self.inner.database_url)).await?;
        self.reload(versions).await
    }

    /// How many revocations this server holds in memory; for metrics and tests.
    pub fn revocations_held(&self) -> usize {
        self.cache().revoked_count()
    }

    /// Runs [`SeaStore::sync_now`] every [`SYNC_INTERVAL`] until `stop` fires,
    /// publishing whether the database answers on `available`.
    pub async fn sync_forever(
        self,
        available: watch::Sender<bool>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(SYNC_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            let result = self.sync_now().await;
            if let Err(err) = &result {
                tracing::warn!(error = %err, "database check failed");
            }
            available.send_if_modified(|up| {
                let changed = *up != result.is_ok();
                *up = result.is_ok();
                changed
            });
        }
    }
}

/// `step`, or `Unavailable` if it takes longer than [`PROBE_TIMEOUT`].
pub(crate) async fn bounded<T>(
    step: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(PROBE_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("database probe timed out".into())))
}

impl crate::oauth::storage::Availability for SeaStore {
    fn database_available(&self) -> bool {
        self.cache().available()
    }
}
