//! Opening the database, applying migrations, and probing it.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection, DbBackend, IsolationLevel,
    TransactionTrait as _,
};
use sea_orm_migration::MigratorTrait as _;

use super::changes::{Versions, read_versions};
use crate::migrations::Migrator;
use crate::oauth::storage::StoreError;

/// The most connections a SQLite pool opens for reads; writes have one more of
/// their own (`connect_sqlite_writer`).
const SQLITE_MAX_CONNECTIONS: u32 = 3;

/// Opens a pool on `url` with the settings oauthd relies on. SQLite gets WAL (so
/// readers never wait for the writer), foreign keys, and a busy timeout so that
/// concurrent writers queue instead of failing.
pub(super) async fn connect(
    url: &str,
    max_connections: u32,
) -> Result<DatabaseConnection, StoreError> {
    connect_as(url, max_connections, Role::Pool).await
}

/// What a connection is for: SQLite's writer checkpoints nothing itself.
#[derive(Clone, Copy)]
enum Role {
    Pool,
    SqliteWriter,
}

async fn connect_as(
    url: &str,
    max_connections: u32,
    role: Role,
) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url.to_owned());
    // SQLite writes one at a time anyway, and sqlx runs a thread per SQLite
    // connection with its own page cache: a few connections serve as well as
    // many and cost less memory.
    let sqlite = is_sqlite(url);
    let max_connections = if sqlite {
        max_connections.min(SQLITE_MAX_CONNECTIONS)
    } else {
        max_connections
    };
    if sqlite {
        // A ping before each checkout would double the hand-offs to sqlx's
        // per-connection SQLite thread, and a local file has no link to lose.
        options.test_before_acquire(false);
    }
    options
        .max_connections(max_connections)
        .min_connections(1)
        // Both well inside the 2 s request deadline, so an outage is reported
        // as such rather than as a timed-out request.
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_millis(1500))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            let opts = opts
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // 1 MiB of page cache per connection (the default is 2 MiB);
                // the hot paths read from memory, not from SQLite.
                .pragma("cache_size", "-1024");
            match role {
                Role::Pool => opts,
                // The store checkpoints off the write path (`checkpoint.rs`).
                Role::SqliteWriter => opts.pragma("wal_autocheckpoint", "0"),
            }
        });
    Ok(Database::connect(options).await?)
}

/// On SQLite, the one connection writes go through: SQLite writes one at a
/// time anyway, and a connection of their own keeps its page cache valid
/// between them (see `SeaStore::write_turn`). `None` for other databases.
pub(super) async fn connect_sqlite_writer(
    url: &str,
) -> Result<Option<DatabaseConnection>, StoreError> {
    if is_sqlite(url) {
        connect_as(url, 1, Role::SqliteWriter).await.map(Some)
    } else {
        Ok(None)
    }
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The PostgreSQL advisory lock that replicas take turns at migrations
/// under: any fixed number, the same in every release.
const MIGRATION_LOCK: i64 = 0x6f61_7574_6864; // "oauthd"

/// Applies pending migrations.
///
/// Replicas of a new release that start together on PostgreSQL would each
/// find the same migrations pending and race to apply them; all but one would
/// fail and restart. Instead they run them in one transaction under an
/// advisory lock: the first applies them, and each later one, once the lock
/// is its turn, finds nothing pending. READ COMMITTED, whatever the database's
/// default, so that a later replica's reads see what the first committed while
/// it waited.
pub(super) async fn migrate(db: &DatabaseConnection) -> Result<(), StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(Migrator::up(db, None).await?);
    }
    let turn = db
        .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
        .await?;
    turn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    Migrator::up(&turn, None).await?;
    turn.commit().await?;
    Ok(())
}

/// Checks that the database answers and returns the change counters, read in
/// one query.
///
/// For SQLite the check opens a fresh connection, without creating the file: a
/// pooled connection keeps working on a file that was deleted, replaced or made
/// unreadable, so only a new connection notices that the database is gone.
pub(crate) async fn probe(db: &DatabaseConnection, url: &str) -> Result<Versions, StoreError> {
    if db.get_database_backend() == DbBackend::Sqlite {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(1)
            .min_connections(0)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|opts| opts.create_if_missing(false));
        let fresh = Database::connect(options).await?;
        let versions = read_versions(&fresh).await;
        let _ = fresh.close().await;
        versions
    } else {
        read_versions(db).await
    }
}
