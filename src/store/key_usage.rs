//! `last_used_at` of API keys (SPEC §8: "accurate to a minute; keeping it must
//! not cost a database write per request").
//!
//! A check only notes the use in memory ([`KeyUsage::note`]). A key is queued
//! for writing when the value this server last wrote for it is a minute old or
//! more (or it has written none), so each server writes a key at most once a
//! minute however often it is used; a background task writes the queue every
//! second, in one transaction, one `UPDATE` per second of use. The write moves
//! no change counter: no server holds `last_used_at` in memory. A failed write
//! is logged and the uses go back in the queue; it costs accuracy, never a
//! request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};
use tokio::sync::watch;

use super::entities::api_key;
use super::retry::retrying;
use super::{SeaStore, bounded};
use crate::clock;
use crate::oauth::model::UnixTime;
use crate::oauth::storage::StoreError;

/// Seconds after this server wrote a key's `last_used_at` before a use of it
/// is written again.
pub(super) const WRITE_EVERY: UnixTime = 60;

/// How often the queue is written.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Keys per `UPDATE`: well within every backend's limit on bound parameters.
const KEYS_PER_STATEMENT: usize = 500;

/// Keys whose `last_used_at` this server wrote; for tests and operators.
const WRITES_METRIC: &str = "oauthd_api_key_last_used_writes_total";

/// The uses of API keys this server has seen and not written yet.
#[derive(Default)]
pub(super) struct KeyUsage {
    by_key: Mutex<HashMap<String, Usage>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    /// The latest value this server wrote, or is writing.
    written: Option<UnixTime>,
    /// The latest use not written yet.
    pending: Option<UnixTime>,
}

/// Uses taken from the queue to be written: the key, when it was used, and
/// what the key's `written` was before, to restore if the write fails.
type Batch = Vec<(String, UnixTime, Option<UnixTime>)>;

impl KeyUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Usage>> {
        self.by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that `key_id` was accepted at `now`: a map lookup, and a queued
    /// write only when this server's last write for it is a minute old.
    pub(super) fn note(&self, key_id: &str, now: UnixTime) {
        let mut by_key = self.lock();
        if let Some(usage) = by_key.get_mut(key_id) {
            if usage
                .written
                .is_some_and(|written| now.saturating_sub(written) < WRITE_EVERY)
            {
                return;
            }
            usage.pending = Some(usage.pending.map_or(now, |pending| pending.max(now)));
        } else {
            by_key.insert(
                key_id.to_owned(),
                Usage {
                    written: None,
                    pending: Some(now),
                },
            );
        }
    }

    /// Takes every queued use, counting it as written so that uses during
    /// the write queue nothing more; and forgets the keys with nothing queued
    /// whose last write is a minute old, which a next use queues anyway.
    fn take(&self, now: UnixTime) -> Batch {
        let mut by_key = self.lock();
        let mut batch = Vec::new();
        by_key.retain(|key_id, usage| {
            if let Some(used) = usage.pending.take() {
                batch.push((key_id.clone(), used, usage.written));
                usage.written = Some(used);
                return true;
            }
            usage
                .written
                .is_some_and(|written| now.saturating_sub(written) < WRITE_EVERY)
        });
        batch
    }

    /// Puts back the uses of a batch whose write failed, unless a later
    /// write has been taken for the key since.
    fn restore(&self, batch: Batch) {
        let mut by_key = self.lock();
        for (key_id, used, before) in batch {
            let usage = by_key.entry(key_id).or_default();
            if usage.written == Some(used) {
                usage.written = before;
            }
            usage.pending = Some(usage.pending.map_or(used, |pending| pending.max(used)));
        }
    }

    #[cfg(test)]
    fn queued(&self) -> Vec<(String, UnixTime)> {
        let mut queued: Vec<_> = self
            .lock()
            .iter()
            .filter_map(|(key_id, usage)| usage.pending.map(|used| (key_id.clone(), used)))
            .collect();
        queued.sort();
        queued
    }
}

impl SeaStore {
    /// Writes the queued uses of API keys every second until `stop` fires,
    /// then once more.
    pub async fn write_key_uses_forever(self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = ticker.tick() => false,
                _ = stop.changed() => true,
            };
            self.write_key_uses().await;
            if stopping {
                return;
            }
        }
    }

    /// Writes the queued uses of API keys, if the database answers.
    pub async fn write_key_uses(&self) {
        if !self.cache().available() {
            // The uses stay queued for when it is back.
            return;
        }
        let usage = &self.cache().key_usage;
        let batch = usage.take(clock::now());
        if batch.is_empty() {
            return;
        }
        match bounded(self.write_last_used(&batch)).await {
            Ok(()) => {
                metrics::counter!(WRITES_METRIC).increment(batch.len() as u64);
            }
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    keys = batch.len(),
                    "could not record when API keys were last used; will retry"
                );
                usage.restore(batch);
            }
        }
    }

    /// One transaction: for each second of use, one `UPDATE` of its keys
    /// (in chunks), never moving `last_used_at` back, which another server
    /// may have written later.
    async fn write_last_used(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut by_second: BTreeMap<UnixTime, Vec<&str>> = BTreeMap::new();
        for (key_id, used, _) in batch {
            by_second.entry(*used).or_default().push(key_id);
        }
        let by_second = &by_second;
        retrying(|| async {
            let turn = self.write_turn().await;
            let txn = turn.db().begin().await?;
            for (used, key_ids) in by_second {
                for chunk in key_ids.chunks(KEYS_PER_STATEMENT) {
                    api_key::Entity::update_many()
                        .col_expr(api_key::Column::LastUsedAt, Expr::value(*used))
                        .filter(api_key::Column::KeyId.is_in(chunk.iter().copied()))
                        .filter(
                            Condition::any()
                                .add(api_key::Column::LastUsedAt.is_null())
                                .add(api_key::Column::LastUsedAt.lt(*used)),
                        )
                        .exec(&txn)
                        .await?;
                }
            }
            txn.commit().await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_queued_at_its_first_use_and_then_once_a_minute() {
        let usage = KeyUsage::default();
        usage.note("k", 1000);
        usage.note("k", 1010);
        assert_eq!(usage.queued(), [("k".to_owned(), 1010)]);
        assert_eq!(usage.take(1010).len(), 1);
        usage.note("k", 1020);
        usage.note("k", 1069);
        assert!(usage.queued().is_empty(), "written 1010, not a minute ago");
        usage.note("k", 1070);
        assert_eq!(usage.queued(), [("k".to_owned(), 1070)]);
    }

    #[test]
    fn a_failed_write_puts_the_uses_back() {
        let usage = KeyUsage::default();
        usage.note("k", 1000);
        let batch = usage.take(1000);
        usage.note("k", 1001);
        assert!(usage.queued().is_empty(), "being written");
        usage.restore(batch);
        assert_eq!(usage.queued(), [("k".to_owned(), 1000)]);
        usage.note("k", 1002);
        assert_eq!(usage.queued(), [("k".to_owned(), 1002)]);
    }

    #[test]
    fn keys_not_used_for_a_minute_are_forgotten() {
        let usage = KeyUsage::default();
        usage.note("old", 1000);
        usage.take(1000);
        usage.note("new", 1050);
        usage.take(1050);
        assert!(usage.take(1060).is_empty());
        let kept: Vec<String> = usage.lock().keys().cloned().collect();
        assert_eq!(kept, ["new"]);
    }
}
