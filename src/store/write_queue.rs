//! Writes that wait for SQLite's one writer, grouped: whoever arrives while a
//! statement runs goes into the next one.
//!
//! Each statement costs two thread hand-offs to sqlx's SQLite thread and a WAL
//! commit; under load those dwarf the row work. So a request queues its write,
//! and one drain task at a time takes the queue, a batch per turn at the
//! writer, and answers each request. Alone, a request waits for nothing extra.

use std::sync::{Mutex, MutexGuard};

/// The most writes in one batch; SQLite takes up to 32766 parameters.
/// Batches are a power of two long, so that sqlx's cache of prepared
/// statements holds seven shapes rather than one per batch size.
pub(super) const MAX_BATCH: usize = 64;

/// Writes of one kind waiting for a batch, and whether a drain task runs.
pub(super) struct WriteQueue<P> {
    state: Mutex<QueueState<P>>,
}

struct QueueState<P> {
    pending: Vec<P>,
    draining: bool,
}

impl<P> Default for WriteQueue<P> {
    fn default() -> Self {
        Self {
            state: Mutex::new(QueueState {
                pending: Vec::new(),
                draining: false,
            }),
        }
    }
}

impl<P> WriteQueue<P> {
    // Never held across an await; a panic elsewhere leaves the queue whole.
    fn lock(&self) -> MutexGuard<'_, QueueState<P>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `pending`. Returns whether the caller must start the drain
    /// task: none was running.
    pub(super) fn push(&self, pending: P) -> bool {
        let mut queue = self.lock();
        queue.pending.push(pending);
        !std::mem::replace(&mut queue.draining, true)
    }

    /// The next batch, oldest first: the largest power of two within what
    /// waits, at most [`MAX_BATCH`]. `None` when nothing waits, and the drain
    /// task then ends.
    pub(super) fn next_batch(&self) -> Option<Vec<P>> {
        let mut queue = self.lock();
        if queue.pending.is_empty() {
            queue.draining = false;
            return None;
        }
        let take = queue.pending.len().min(MAX_BATCH);
        let take = 1 << take.ilog2();
        Some(queue.pending.drain(..take).collect())
    }
}

/// Splits off the writes whose key is already earlier in the batch: of two
/// writes of one credential, the second must see the first's effect.
pub(super) fn first_of_each<P>(batch: Vec<P>, key: impl Fn(&P) -> &str) -> (Vec<P>, Vec<P>) {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .partition(|pending| seen.insert(key(pending).to_owned()))
}
