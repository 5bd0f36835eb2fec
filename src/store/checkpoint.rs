//! SQLite's WAL checkpoints, off the write path.
//!
//! Left to itself, SQLite checkpoints inside the commit that takes the WAL
//! past 1000 pages: that write, and every request queued behind it, waits
//! while pages are copied into the database file and the file is synced. The
//! writer connection has automatic checkpoints off instead (`connect.rs`),
//! and a task of the store checkpoints shortly after writes, in two passes:
//! - a passive checkpoint on a reader connection copies the WAL while writes
//!   go on;
//! - a second one inside a write turn copies what was written meanwhile, a
//!   few pages, so the checkpoint completes and the next write starts the WAL
//!   file over. Under steady writes a passive checkpoint alone never catches
//!   up with the writer, and the WAL would grow without bound.
//!
//! A page written many times between two checkpoints is copied once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use tokio::sync::Notify;

use super::Inner;

/// How long after a write the checkpoint starts: writes meanwhile join it.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(100);

/// Wakes the checkpoint task: after each write, and when the store is dropped
/// so that the task ends.
#[derive(Default, Clone)]
pub(super) struct CheckpointSignal(Arc<Notify>);

impl CheckpointSignal {
    pub(super) fn wake(&self) {
        self.0.notify_one();
    }
}

/// Checkpoints `store`'s SQLite database after writes until the store is
/// dropped. Must be called within a Tokio runtime.
pub(super) fn spawn(store: Weak<Inner>, signal: CheckpointSignal) {
    tokio::spawn(async move {
        loop {
            signal.0.notified().await;
            tokio::time::sleep(CHECKPOINT_DELAY).await;
            let Some(store) = store.upgrade() else {
                return;
            };
            let Some(writer) = &store.sqlite_writer else {
                return;
            };
            checkpoint(&store.db).await;
            // Not `write_turn`, which would signal a write and wake this task
            // again for nothing.
            let _turn = writer.turn.lock().await;
            checkpoint(&writer.db).await;
        }
    });
}

/// A passive checkpoint: it copies what no reader still needs from the WAL,
/// and never waits for a lock. One that fails leaves the WAL to the next.
async fn checkpoint(db: &DatabaseConnection) {
    if let Err(err) = db
        .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
        .await
    {
        tracing::debug!(error = %err, "WAL checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::SeaStore;

    /// The WAL header's first salt, which SQLite changes each time it starts
    /// the WAL file over.
    fn wal_salt(wal: &std::path::Path) -> Option<[u8; 4]> {
        let header = std::fs::read(wal).ok()?;
        header.get(16..20)?.try_into().ok()
    }

    /// Long enough for many checkpoints even on a loaded machine, where one
    /// cycle took 0.75 s.
    const STEADY_WRITES: Duration = Duration::from_secs(3);

    /// Under writes that never pause, the WAL is still checkpointed to the
    /// end and started over, again and again: it does not grow without bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_writes_the_wal_is_started_over_again_and_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = SeaStore::open(&url, 4, None).await.unwrap();
        let wal = dir.path().join("t.db-wal");
        store
            .write_turn()
            .await
            .db()
            .execute_unprepared("CREATE TABLE filler (page BLOB)")
            .await
            .unwrap();
        let mut salts = Vec::new();
        let mut largest = 0;
        let started = crate::clock::instant();
        while started.elapsed() < STEADY_WRITES {
            for _ in 0..20 {
                store
                    .write_turn()
                    .await
                    .db()
                    .execute_unprepared("INSERT INTO filler VALUES (randomblob(4000))")
                    .await
                    .unwrap();
            }
            if let Some(salt) = wal_salt(&wal)
                && salts.last() != Some(&salt)
            {
                salts.push(salt);
            }
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |meta| meta.len()));
        }
        let rows = store
            .db()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM filler",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert!(rows > 100, "only {rows} rows were written");
        assert!(
            salts.len() >= 3,
            "the WAL was started over {} times in {STEADY_WRITES:?} of writes",
            salts.len() - 1
        );
        // Each row fills a page. Without the checkpoint inside a write turn,
        // the WAL holds them all (1.3 times their size, with the index pages);
        // with it, what one checkpoint cycle lets through.
        let written = u64::try_from(rows).unwrap() * 4096;
        assert!(
            largest < written * 7 / 10,
            "the WAL reached {largest} bytes for {written} bytes of rows"
        );
    }
}
