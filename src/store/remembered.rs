//! The memory answer for credentials that need a lookup (SPEC §9: "an API key
//! or opaque token is looked up once and then answered from memory too, so
//! repeated checks read no database").
//!
//! [`Remembered`] maps a credential's hash to what the database said of it:
//! the record, or that there is none. Remembering "none" matters as much as the
//! record: a made-up value with a good checksum then costs one lookup, not one
//! per request (design note `request-check.md`, risk 3).
//!
//! An entry is served only while its generation is current and its `until`
//! has not passed. [`Remembered::forget_all`] starts a new generation when the
//! database may have changed in a way memory cannot see (for API keys: their
//! change counter moved, or this server revoked one). A lookup reads the
//! generation before its query ([`Remembered::ticket`]) and stores its answer
//! under that one. So a lookup that read the database before a change
//! committed, and finishes after the change was announced, stores an answer
//! that is never served: no lock is held across the query, and forgetting
//! needs no coordination with lookups in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::oauth::model::UnixTime;
use crate::oauth::storage::StoreError;

/// Credentials looked up, by kind, when memory had no answer.
const LOOKUPS_METRIC: &str = "oauthd_store_lookups_total";

/// Counts a database lookup of a credential of `kind` (`/metrics`): a test
/// shows with it that repeated checks of one credential read no database.
pub(super) fn count_lookup(kind: &'static str) {
    metrics::counter!(LOOKUPS_METRIC, "kind" => kind).increment(1);
}

/// Seconds a credential the database does not have is remembered as unknown.
/// A new credential cannot be among them (nobody can present a random value
/// before it is issued), so this only bounds how long a row written behind
/// oauthd's back goes unseen.
pub(super) const UNKNOWN_LIFETIME: UnixTime = 60;

/// What the database said of credentials, by hash; bounded.
pub(super) struct Remembered<V> {
    entries: quick_cache::sync::Cache<String, Entry<V>>,
    generation: AtomicU64,
}

#[derive(Clone)]
struct Entry<V> {
    /// The generation the lookup began in.
    generation: u64,
    /// When the entry stops being served.
    until: UnixTime,
    /// The record, or `None` for "the database has none".
    value: Option<Arc<V>>,
}

/// The generation a lookup began in; taken before its query.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

impl<V: Clone> Remembered<V> {
    /// Memory for at most `capacity` credentials. quick_cache keeps the ones
    /// asked for again over one-off values, so a stream of junk does not push
    /// out the credentials in use.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            generation: AtomicU64::new(0),
        }
    }

    /// The remembered answer for `hash` at `now`: `Some(None)` when the
    /// database had no such credential, `None` when memory has no answer.
    pub(super) fn get(&self, hash: &str, now: UnixTime) -> Option<Option<V>> {
        let entry = self.entries.get(hash)?;
        if entry.generation != self.generation.load(Ordering::SeqCst) || entry.until <= now {
            return None;
        }
        Some(entry.value.map(|value| (*value).clone()))
    }

    /// Where a lookup begins: call before the query, and give the ticket to
    /// [`Remembered::remember`] with its answer.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// Remembers the answer of the lookup that took `ticket`, until `until`.
    /// An answer from a generation already forgotten is dropped here (or, if
    /// the generation moves on right after this check, never served).
    pub(super) fn remember(&self, ticket: Ticket, hash: &str, value: Option<V>, until: UnixTime) {
        if ticket.0 != self.generation.load(Ordering::SeqCst) {
            return;
        }
        self.entries.insert(
            hash.to_owned(),
            Entry {
                generation: ticket.0,
                until,
                value: value.map(Arc::new),
            },
        );
    }

    /// The answer for `hash` at `now`: from memory, or from `read` (one
    /// database lookup of `kind`, counted), which is then remembered until
    /// `known_until` says for a record, [`UNKNOWN_LIFETIME`] for none.
    pub(super) async fn lookup(
        &self,
        hash: &str,
        now: UnixTime,
        kind: &'static str,
        read: impl Future<Output = Result<Option<V>, StoreError>>,
        known_until: impl FnOnce(&V) -> UnixTime,
    ) -> Result<Option<V>, StoreError> {
        if let Some(answer) = self.get(hash, now) {
            return Ok(answer);
        }
        let ticket = self.ticket();
        count_lookup(kind);
        let found = read.await?;
        let until = found
            .as_ref()
            .map_or(now.saturating_add(UNKNOWN_LIFETIME), known_until);
        self.remember(ticket, hash, found.clone(), until);
        Ok(found)
    }

    /// Forgets every answer: none given before this call is served after it.
    pub(super) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Only for the memory: correctness comes from the generation.
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_known_and_unknown_until_their_time() {
        let memory = Remembered::new(8);
        let ticket = memory.ticket();
        memory.remember(ticket, "known", Some(7), 100);
        memory.remember(ticket, "unknown", None, 50);
        assert_eq!(memory.get("known", 99), Some(Some(7)));
        assert_eq!(memory.get("unknown", 49), Some(None));
        assert_eq!(memory.get("unknown", 50), None, "past its time");
        assert_eq!(memory.get("never asked", 0), None);
    }

    #[test]
    fn forgetting_drops_every_answer() {
        let memory = Remembered::new(8);
        memory.remember(memory.ticket(), "known", Some(7), 100);
        memory.forget_all();
        assert_eq!(memory.get("known", 0), None);
        memory.remember(memory.ticket(), "known", Some(8), 100);
        assert_eq!(memory.get("known", 0), Some(Some(8)));
    }

    #[test]
    fn a_lookup_that_began_before_a_forget_is_never_served() {
        let memory = Remembered::new(8);
        // Took its ticket, then read the database before a change committed.
        let stale = memory.ticket();
        memory.forget_all();
        memory.remember(stale, "key", Some("before the change"), 100);
        assert_eq!(memory.get("key", 0), None);
        // A lookup that began after the forget has the last word.
        memory.remember(memory.ticket(), "key", Some("after"), 100);
        assert_eq!(memory.get("key", 0), Some(Some("after")));
    }

    #[test]
    fn an_answer_stored_just_before_a_forget_is_not_served_after_it() {
        let memory = Remembered::new(8);
        let ticket = memory.ticket();
        memory.remember(ticket, "key", Some(1), 100);
        // The forget raced with the insert and its clear missed the entry:
        // the generation alone keeps it from being served.
        memory.generation.fetch_add(1, Ordering::SeqCst);
        assert_eq!(memory.get("key", 0), None);
    }
}
