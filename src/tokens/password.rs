//! User passwords: Argon2id hashes, verified off the async runtime.
//!
//! A password check costs tens of milliseconds of CPU by design. Running it on a
//! runtime worker would stall every other request on that worker, so checks run
//! on dedicated threads behind a bounded queue, and a burst of logins queues (or
//! is refused) instead of starving the machine.

use std::cell::RefCell;
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

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

/// Argon2id's cost for new hashes: 12 MiB, three passes, one lane. OWASP lists
/// this beside 19 MiB with two passes as equally strong; the smaller working
/// buffer keeps a server that is checking passwords within its memory budget.
/// Stored hashes carry their own cost, so older hashes still verify.
const MEMORY_KIB: u32 = 12 * 1024;
const PASSES: u32 = 3;
const LANES: u32 = 1;

/// Hashes a password with Argon2id at oauthd's cost. Blocking: call it from
/// `spawn_blocking` or from the CLI.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|err| PasswordError::Hash(err.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| PasswordError::Hash(err.to_string()))
}

/// Whether `password` matches the PHC string `hash`. Blocking: takes tens of
/// milliseconds of CPU by design.
///
/// Argon2's working memory (12 MiB at oauthd's cost) is allocated once per
/// thread and reused: allocating it per check let the allocator keep several
/// such blocks around at once, and peak memory more than doubled.
pub fn password_matches(password: &str, hash: &str) -> bool {
    thread_local! {
        static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let Some(argon2) = hasher_for(&parsed) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let blocks = argon2.params().block_count();
    let mut output = vec![0u8; expected.len()];
    let computed = MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut output,
            &mut memory[..blocks],
        )
    });
    computed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
}

/// The Argon2 instance a stored hash was made with.
fn hasher_for(parsed: &PasswordHash) -> Option<Argon2<'static>> {
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(parsed).ok()?;
    Some(Argon2::new(algorithm, version, params))
}

/// The hash checked when a login names no user, so that an unknown login costs
/// as much time as a wrong password. A constant serves as well as a fresh one:
/// nobody knows its password, and a match with it never counts as a success.
/// What matters is that checking it costs what checking a stored hash costs, so
/// it carries oauthd's own parameters (a test pins them to the constants above).
const DECOY_HASH: &str = "$argon2id$v=19$m=12288,t=3,p=1$z+t/ksEzPqRNtSbAKokZXA$wsSm8GR74lpx6ITFmYrYoLh+Yv9MpCtwTn5j811lb4k";

/// The decoy, checked to be a usable Argon2 hash. It is never empty: an empty or
/// unusable one would make unknown logins answer at once and tell an attacker
/// which logins exist, so a decoy that does not parse fails start-up instead.
fn decoy_hash() -> Result<Arc<str>, PasswordError> {
    let parsed = PasswordHash::new(DECOY_HASH)
        .map_err(|err| PasswordError::Hash(format!("the decoy hash does not parse: {err}")))?;
    if hasher_for(&parsed).is_none() || parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(PasswordError::Hash("the decoy hash is not usable".into()));
    }
    Ok(Arc::from(DECOY_HASH))
}

/// A password check handed to a worker thread.
struct Check {
    password: Secret,
    /// The stored hash, or the decoy for an unknown login.
    hash: Arc<str>,
    /// Whether `hash` is the decoy: the answer is then `false` whatever it says.
    decoy: bool,
    answer: oneshot::Sender<bool>,
}

/// Verifies passwords on dedicated worker threads, at most `workers` at once,
/// with at most `queue` more waiting: beyond that a login is refused at once
/// instead of waiting behind a burst it could not get through anyway.
///
/// Dedicated threads rather than tokio's blocking pool: each Argon2 check needs
/// 12 MiB, and the allocator keeps that much per thread that ever ran one, so a
/// pool that wanders over many threads holds many times the memory.
#[derive(Debug, Clone)]
pub struct PasswordVerifier {
    checks: std::sync::mpsc::SyncSender<Check>,
    decoy: Arc<str>,
}

impl PasswordVerifier {
    /// Starts `workers` threads (at least one) behind a queue of `queue` checks.
    /// Fails when the decoy hash cannot be made: a start-up error.
    pub fn new(workers: usize, queue: usize) -> Result<Self, PasswordError> {
        let decoy = decoy_hash()?;
        let (checks, inbox) = std::sync::mpsc::sync_channel::<Check>(queue);
        let inbox = Arc::new(Mutex::new(inbox));
        for index in 0..workers.max(1) {
            let inbox = Arc::clone(&inbox);
            let spawned = std::thread::Builder::new()
                .name(format!("oauthd-argon2-{index}"))
                .spawn(move || run_checks(&inbox));
            if let Err(err) = spawned {
                tracing::error!(error = %err, "cannot start a password worker");
            }
        }
        Ok(Self { checks, decoy })
    }

    /// The default for a machine with `cores` cores: one worker fewer than there
    /// are cores, so that a burst of logins always leaves a core to everything
    /// else, and 64 checks waiting at most.
    pub fn for_cores(cores: usize) -> Result<Self, PasswordError> {
        Self::new(cores.saturating_sub(1).max(1), 64)
    }

    /// Whether `password` matches `hash`; with `None`, checks against a decoy and
    /// answers `false`, taking the same time.
    pub async fn verify(
        &self,
        password: &Secret,
        hash: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let (answer, result) = oneshot::channel();
        let check = Check {
            password: password.clone(),
            hash: hash.map_or_else(|| Arc::clone(&self.decoy), Arc::from),
            decoy: hash.is_none(),
            answer,
        };
        self.checks.try_send(check).map_err(|err| match err {
            TrySendError::Full(_) => PasswordError::Busy,
            TrySendError::Disconnected(_) => PasswordError::Task("password workers stopped".into()),
        })?;
        result
            .await
            .map_err(|_| PasswordError::Task("a password worker died".into()))
    }
}

/// A worker's loop: take a check, run it, answer; until every sender is gone.
fn run_checks(inbox: &Mutex<std::sync::mpsc::Receiver<Check>>) {
    loop {
        let next = inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .recv();
        let Ok(check) = next else { return };
        let matches = password_matches(check.password.expose(), &check.hash) && !check.decoy;
        // The caller may have given up (request deadline); nothing to do then.
        let _ = check.answer.send(matches);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_from_other_argon2_settings_and_garbage_are_handled() {
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8, 1, 1, Some(16)).unwrap(),
        );
        let hash = argon2i.hash_password(b"pw").unwrap().to_string();
        assert!(password_matches("pw", &hash));
        assert!(!password_matches("pw2", &hash));
        assert!(!password_matches("pw", "not a phc string"));
        assert!(!password_matches(
            "pw",
            &hash.replace("argon2i", "argon2id")
        ));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hash = hash_password("pw").unwrap();
        let verifier = PasswordVerifier::new(1, 1).unwrap();
        let password = Secret::new("pw");
        let check = || verifier.verify(&password, Some(&hash));
        // join! polls each once in turn, so all six are offered before any answer.
        let (a, b, c, d, e, f) = tokio::join!(check(), check(), check(), check(), check(), check());
        let results = [a, b, c, d, e, f];
        let passed = results.iter().filter(|r| matches!(r, Ok(true))).count();
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(PasswordError::Busy)))
            .count();
        assert_eq!(passed + busy, 6);
        assert!(
            (1..=2).contains(&passed),
            "one running and one queued at most, got {passed}"
        );
    }

    #[test]
    fn new_hashes_carry_oauthds_cost_and_older_costs_still_verify() {
        let hash = hash_password("pw").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"),
            "{hash}"
        );
        // A hash made at the argon2 crate's default (19 MiB, two passes), as
        // earlier versions stored them.
        let older = Argon2::default().hash_password(b"pw").unwrap().to_string();
        assert!(older.contains("m=19456,t=2,p=1"), "{older}");
        assert!(password_matches("pw", &older));
        assert!(!password_matches("other", &older));
    }

    #[test]
    fn the_decoy_is_a_real_hash_at_oauthds_cost() {
        let decoy = decoy_hash().unwrap();
        let parsed = PasswordHash::new(&decoy).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, PASSES, LANES)
        );
        // Same shape as what hash_password stores today.
        let real = hash_password("pw").unwrap();
        assert_eq!(decoy.len(), real.len());
    }

    #[tokio::test]
    async fn an_unknown_login_costs_an_argon2_check() {
        let verifier = PasswordVerifier::new(1, 4).unwrap();
        let password = Secret::new("guess");
        let started = crate::clock::instant();
        assert!(!verifier.verify(&password, None).await.unwrap());
        let decoy_time = started.elapsed();
        // A check of an empty or unparsable hash returns in microseconds; a real
        // Argon2id check at 12 MiB and three passes takes milliseconds even
        // optimised (this test crate builds argon2 with opt-level 3).
        assert!(
            decoy_time >= std::time::Duration::from_millis(2),
            "{decoy_time:?}"
        );
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let verifier = PasswordVerifier::new(2, 8).unwrap();
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
