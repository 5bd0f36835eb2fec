//! Write transactions that lost a conflict are run again, whole.
//!
//! PostgreSQL aborts a transaction with SQLSTATE `40001` when it cannot be
//! serialized with a concurrent one (under `SERIALIZABLE` or `REPEATABLE
//! READ`, and for some conflicts under any level) and with `40P01` when it
//! was chosen to break a deadlock. SQLite answers `SQLITE_BUSY` when another
//! process holds the write lock past the busy timeout, or when a transaction
//! that read wants to write after another connection wrote. In every case
//! the database has rolled the transaction back and a later try may succeed,
//! so the store runs the write again after a short jittered sleep.
//!
//! A retried write never has an effect twice: what is retried is one whole
//! transaction, which the failure rolled back, and its effects outside the
//! database (the caches) happen only after its commit. Single use still
//! holds, as the retry re-reads: a refresh token that the winner of the
//! conflict spent is seen spent.

use std::time::Duration;

use super::error::retry_reason;
use crate::clock;
use crate::oauth::storage::StoreError;
use rand::Rng as _;

/// The most times one write runs.
const MAX_ATTEMPTS: u32 = 8;

/// No retry starts once this long has passed since the first try: past it the
/// client is better served by an error it can retry itself.
const RETRY_BUDGET: Duration = Duration::from_millis(600);

/// The sleep before the first retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(4);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

const RETRIES_METRIC: &str = "oauthd_store_write_retries_total";

/// Runs `write` until it succeeds, fails for a reason a retry cannot mend, or
/// the attempts or the time budget run out; answers its last result.
///
/// `write` must be one transaction: everything it does before failing is
/// rolled back. It takes its write turn itself, so that the turn is not held
/// while sleeping.
pub(super) async fn retrying<T, Write>(mut write: impl FnMut() -> Write) -> Result<T, StoreError>
where
    Write: Future<Output = Result<T, StoreError>>,
{
    let started = clock::instant();
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let result = write().await;
        let Err(err) = &result else {
            return result;
        };
        let Some(reason) = retry_reason(err) else {
            return result;
        };
        // Full-range jitter would let two losers retry in step again; half of
        // it keeps the backoff growing while still spreading them apart.
        let sleep = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        if attempt >= MAX_ATTEMPTS || started.elapsed() + sleep > RETRY_BUDGET {
            tracing::warn!(
                reason,
                attempts = attempt,
                "database write still conflicting: giving up"
            );
            return result;
        }
        metrics::counter!(RETRIES_METRIC, "reason" => reason).increment(1);
        tracing::debug!(reason, attempt, "database write conflicted: retrying");
        tokio::time::sleep(sleep).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU32, Ordering};

    use sea_orm::ConnectionTrait as _;

    use super::*;
    use crate::store::error::tests::{busy_snapshot, postgres, raised, sqlite_counter};

    #[tokio::test]
    async fn a_serialization_failure_or_deadlock_is_run_again_until_it_succeeds() {
        let db = postgres().await;
        for state in ["40001", "40P01"] {
            let runs = AtomicU32::new(0);
            let result = retrying(|| async {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(raised(&db, state).await);
                }
                Ok("written")
            })
            .await;
            assert_eq!(result.unwrap(), "written", "{state}");
            assert_eq!(runs.load(Ordering::SeqCst), 3, "{state}");
        }
    }

    #[tokio::test]
    async fn other_errors_are_not_run_again() {
        let db = postgres().await;
        // A unique violation, a division by zero, a connection failure.
        for state in ["23505", "22012", "08006"] {
            let runs = AtomicU32::new(0);
            let result: Result<(), _> = retrying(|| async {
                runs.fetch_add(1, Ordering::SeqCst);
                Err(raised(&db, state).await)
            })
            .await;
            assert!(result.is_err(), "{state}");
            assert_eq!(runs.load(Ordering::SeqCst), 1, "{state}");
        }
    }

    #[tokio::test]
    async fn a_write_that_keeps_conflicting_gives_up_within_the_bounds() {
        let db = postgres().await;
        let runs = AtomicU32::new(0);
        let started = clock::instant();
        let result: Result<(), _> = retrying(|| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(raised(&db, "40001").await)
        })
        .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        let runs = runs.load(Ordering::SeqCst);
        assert!((2..=MAX_ATTEMPTS).contains(&runs), "{runs} runs");
        // The budget bounds when the last retry starts, not how long it runs.
        assert!(
            started.elapsed() < RETRY_BUDGET * 2,
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn sqlite_busy_is_run_again_and_the_write_lands_once() {
        let (_dir, db) = sqlite_counter().await;
        let runs = AtomicU32::new(0);
        retrying(|| async {
            // The first run meets a stale snapshot; the retry writes.
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(busy_snapshot(&db).await);
            }
            db.execute_unprepared("UPDATE counter SET n = n + 10")
                .await
                .map(drop)
                .map_err(StoreError::from)
        })
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let n: i64 = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM counter",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get("", "n")
            .unwrap();
        // busy_snapshot's own committed write, then the retried one, once.
        assert_eq!(n, 11);
    }
}
