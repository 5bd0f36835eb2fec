//! User passwords: Argon2id hashes, verified off the async runtime.
//!
//! A password check costs tens of milliseconds of CPU by design. Running it on a
//! runtime worker would stall every other request on that worker, so each check
//! runs on the blocking pool, and a semaphore bounds how many run at once so a
//! burst of logins queues instead of starving the machine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use super::secret::Secret;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hashing library refused.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task died.
    #[error("password task failed: {0}")]
    Task(String),
    /// Too many checks are already waiting; the caller should retry later.
    #[error("too many password checks waiting")]
    Busy,
}

/// Hashes a password with Argon2id at the library's recommended cost (RFC 9106
/// second recommended option: m = 19 MiB, t = 2, p = 1). Blocking: call it from
/// `spawn_blocking` or from the CLI.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

/// Whether `password` matches the PHC string `hash`. Blocking: takes tens of
/// milliseconds of CPU by design.
pub fn password_matches(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash of a random password, checked when the login names no user so that an
/// unknown login costs as much time as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(&super::secret::new_secret()).unwrap_or_default())
}

/// Verifies passwords on the blocking pool, at most `limit` at once, with at most
/// `queue` more waiting: beyond that a login is refused at once instead of
/// waiting behind a burst it could not get through anyway.
#[derive(Debug, Clone)]
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
}

/// Counts a waiting check for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordVerifier {
    /// A verifier that runs at most `limit` checks at once and queues `queue`.
    pub fn new(limit: usize, queue: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
        }
    }

    /// The default for a machine with `cores` cores: one core fewer than there
    /// are, so that a burst of logins always leaves a core to everything else.
    pub fn for_cores(cores: usize) -> Self {
        Self::new(cores.saturating_sub(1).max(1), 64)
    }

    /// Whether `password` matches `hash`; with `None`, checks against a decoy and
    /// answers `false`, taking the same time.
    pub async fn verify(
        &self,
        password: &Secret,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let waiting = Waiting(&self.waiting);
        let permit = self.permits.acquire().await;
        drop(waiting);
        let _permit = permit.map_err(|err| PasswordError::Task(err.to_string()))?;
        let password = password.clone();
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let hash = hash.as_deref().unwrap_or_else(|| decoy_hash());
            password_matches(password.expose(), hash) && known
        })
        .await
        .map_err(|err| PasswordError::Task(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hash = hash_password("pw").unwrap();
        let verifier = PasswordVerifier::new(1, 1);
        let password = Secret::new("pw");
        let (a, b, c) = tokio::join!(
            verifier.verify(&password, Some(&hash)),
            verifier.verify(&password, Some(&hash)),
            verifier.verify(&password, Some(&hash)),
        );
        let busy = [&a, &b, &c]
            .iter()
            .filter(|r| matches!(r, Err(PasswordError::Busy)))
            .count();
        assert_eq!(busy, 1, "one runs, one waits, the third is refused");
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let verifier = PasswordVerifier::new(2, 8);
        assert!(
            verifier
                .verify(&Secret::new("correct horse"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !verifier
                .verify(&Secret::new("wrong"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !verifier
                .verify(&Secret::new("correct horse"), None)
                .await
                .unwrap()
        );
    }
}
