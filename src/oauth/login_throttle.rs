//! Throttling failed logins by client address: one address that keeps guessing
//! passwords is slowed, then refused for a while, without locking any account.
//!
//! The policy, per address (IPv4 as is, IPv6 grouped by /64, since one host
//! usually holds a whole /64):
//! - each failed login (wrong password or unknown login) opens or extends a count
//!   that lasts `window` from the first failure;
//! - after the k-th failure the address is refused for `backoff · 2^(k-1)`;
//! - the `max_failures`-th failure within the window bans the address for `ban`,
//!   after which it starts afresh;
//! - password checks in progress count as possible failures, and at most
//!   `max_concurrent` of them run at once: concurrent guesses cannot overshoot
//!   the count, and one address cannot fill the shared Argon2 queue;
//! - a successful login resets nothing, so an attacker who also holds a working
//!   account cannot clear its count by logging in between guesses.
//!
//! A refused attempt is answered before the password is checked: no Argon2 work,
//! and nothing counted against the account's `--max-failed-logins`.
//!
//! The state lives in a bounded cache, so memory stays bounded whatever an
//! attacker does; an address with nothing to remember is dropped from it. Each
//! replica counts on its own.

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, EntryAction, EntryResult};

use super::error::OAuthError;

/// How long a refused attempt is told to wait when the address has checks in
/// progress rather than a backoff or a ban.
const IN_PROGRESS_RETRY: Duration = Duration::from_secs(1);

/// The throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failed logins within `window` that ban an address; 0 counts no failures
    /// (no backoff, no ban).
    pub max_failures: u32,
    /// How long a count of failures lasts, from the first of them.
    pub window: Duration,
    /// How long a banned address is refused.
    pub ban: Duration,
    /// How long an address is refused after its first failure; doubled after
    /// each further one. Zero: no slowing, only the ban.
    pub backoff: Duration,
    /// Password checks one address may have in progress at once; 0: no limit.
    pub max_concurrent: u32,
    /// Addresses remembered at most.
    pub capacity: usize,
}

impl Default for ThrottlePolicy {
    /// Close to Authelia's regulation (3 failures in 2 minutes ban for 5 minutes),
    /// plus a short backoff between failures.
    fn default() -> Self {
        Self {
            max_failures: 3,
            window: Duration::from_secs(120),
            ban: Duration::from_secs(300),
            backoff: Duration::from_secs(1),
            max_concurrent: 4,
            capacity: 65_536,
        }
    }
}

/// Where a login attempt comes from, and when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginOrigin {
    /// The client's address, as the transport resolved it.
    pub address: IpAddr,
    /// When the attempt arrived (a monotonic instant).
    pub at: Instant,
}

/// The unit the throttle counts: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddressGroup {
    V4(u32),
    V6(u64),
}

impl AddressGroup {
    fn of(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// What the throttle remembers of one address.
#[derive(Debug, Clone, Copy, Default)]
struct AddressState {
    /// Failures in the current window.
    failures: u32,
    /// When the current window ends; `None` while no failure is counted.
    window_ends: Option<Instant>,
    /// Refused until then (a backoff or a ban).
    refused_until: Option<Instant>,
    /// Password checks in progress.
    in_flight: u32,
}

impl AddressState {
    fn is_clean(&self) -> bool {
        self.failures == 0 && self.refused_until.is_none() && self.in_flight == 0
    }
}

/// Failed logins by address, bounded in memory. Shared by every login path: the
/// password grant now, the login page later.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    addresses: Cache<AddressGroup, AddressState>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("policy", &self.policy)
            .field("addresses", &self.addresses.len())
            .finish()
    }
}

impl LoginThrottle {
    /// A throttle that remembers nothing yet.
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            addresses: Cache::new(policy.capacity.max(1)),
        }
    }

    fn enabled(&self) -> bool {
        self.policy.max_failures > 0 || self.policy.max_concurrent > 0
    }

    /// Call before checking a password. Either the attempt may go ahead (report
    /// its failure with [`LoginAttempt::failed`]; any other end just drops it),
    /// or it is refused with [`OAuthError::Throttled`] and the password must not
    /// be checked. An attempt of unknown origin is not throttled.
    pub fn begin(&self, origin: Option<LoginOrigin>) -> Result<LoginAttempt<'_>, OAuthError> {
        let Some(origin) = origin.filter(|_| self.enabled()) else {
            return Ok(LoginAttempt {
                throttle: self,
                tracked: None,
            });
        };
        let group = AddressGroup::of(origin.address);
        let admitted = match self.addresses.entry(&group, None, |_, state| {
            EntryAction::Retain(self.admit(state, origin.at))
        }) {
            EntryResult::Retained(admitted) => admitted,
            EntryResult::Vacant(guard) => {
                let mut state = AddressState::default();
                let admitted = self.admit(&mut state, origin.at);
                let _ = guard.insert(state);
                admitted
            }
            // Never asked for: the callback only retains.
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => Ok(()),
        };
        admitted.map_err(|wait| OAuthError::Throttled {
            retry_after_secs: whole_seconds(wait),
        })?;
        Ok(LoginAttempt {
            throttle: self,
            tracked: Some((group, origin.at)),
        })
    }

    /// Admits one more check for the address, or says how long to wait.
    fn admit(&self, state: &mut AddressState, now: Instant) -> Result<(), Duration> {
        if let Some(until) = state.refused_until {
            if now < until {
                return Err(until - now);
            }
            state.refused_until = None;
        }
        if state.window_ends.is_some_and(|end| now >= end) {
            state.failures = 0;
            state.window_ends = None;
        }
        let policy = &self.policy;
        if policy.max_concurrent > 0 && state.in_flight >= policy.max_concurrent {
            return Err(IN_PROGRESS_RETRY);
        }
        if policy.max_failures > 0 && state.failures + state.in_flight >= policy.max_failures {
            return Err(IN_PROGRESS_RETRY);
        }
        state.in_flight += 1;
        Ok(())
    }

    /// Counts a failure that arrived `at`; true if it banned the address.
    fn record_failure(&self, state: &mut AddressState, at: Instant) -> bool {
        let policy = &self.policy;
        if policy.max_failures == 0 {
            return false;
        }
        if state.window_ends.is_none_or(|end| at >= end) {
            state.failures = 0;
            state.window_ends = Some(at + policy.window);
        }
        state.failures += 1;
        let banned = state.failures >= policy.max_failures;
        let refusal = if banned {
            state.failures = 0;
            state.window_ends = None;
            policy.ban
        } else {
            let doublings = (state.failures - 1).min(31);
            policy
                .backoff
                .saturating_mul(1 << doublings)
                .min(policy.ban)
        };
        if !refusal.is_zero() {
            let until = at + refusal;
            state.refused_until = Some(state.refused_until.map_or(until, |u| u.max(until)));
        }
        banned
    }

    /// Ends a tracked attempt: one check fewer in progress, and its failure if
    /// it failed. An address left with nothing to remember leaves the cache.
    fn finish(&self, group: AddressGroup, at: Instant, failed: bool) {
        let result = self.addresses.entry(&group, None, |_, state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            let banned = failed && self.record_failure(state, at);
            if state.is_clean() {
                EntryAction::Remove
            } else {
                EntryAction::Retain(banned)
            }
        });
        // Vacant: the address was evicted meanwhile, and is forgotten; dropping
        // the guard inserts nothing.
        if let EntryResult::Retained(true) = result {
            tracing::warn!(
                address = %group,
                ban_secs = self.policy.ban.as_secs(),
                "login throttle: address banned after repeated failed logins"
            );
        }
    }

    /// How many addresses the throttle remembers now.
    pub fn remembered(&self) -> usize {
        self.addresses.len()
    }
}

impl std::fmt::Display for AddressGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::V4(bits) => write!(f, "{}", std::net::Ipv4Addr::from(bits)),
            Self::V6(prefix) => write!(
                f,
                "{}/64",
                std::net::Ipv6Addr::from(u128::from(prefix) << 64)
            ),
        }
    }
}

/// A login attempt the throttle let through. Dropping it ends the attempt
/// without a failure (a success, or an outcome that says nothing about the
/// password).
#[derive(Debug)]
#[must_use = "report a failed password with `failed`"]
pub struct LoginAttempt<'a> {
    throttle: &'a LoginThrottle,
    tracked: Option<(AddressGroup, Instant)>,
}

impl LoginAttempt<'_> {
    /// The password was wrong, or the login named no one.
    pub fn failed(mut self) {
        if let Some((group, at)) = self.tracked.take() {
            self.throttle.finish(group, at, true);
        }
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if let Some((group, at)) = self.tracked.take() {
            self.throttle.finish(group, at, false);
        }
    }
}

/// `Retry-After` is whole seconds: round up, and never say 0.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}
