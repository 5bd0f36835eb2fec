//! How many revocations one client may write per second, on one server.
//!
//! Every revocation that writes reaches every replica (each one reads it and
//! holds it in memory until the token expires), so one client revoking its own
//! tokens as fast as it can mint them would cost the whole fleet. Revocations
//! that write nothing (a token already revoked, unknown or expired) do not
//! count. The count is per server, not across the fleet: a client spread over
//! `n` replicas may write `n` times the bound.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::OAuthError;
use super::model::UnixTime;

/// Past this many tracked clients, the windows of past seconds are dropped.
const TRACKED_CLIENTS: usize = 1024;

/// One client's count in the current second.
#[derive(Debug, Clone, Copy)]
struct Window {
    second: UnixTime,
    used: u32,
}

/// The per-client bound on revocations that write, counted in whole seconds
/// of the clock: at most `per_second` in any one second.
#[derive(Debug)]
pub struct RevocationLimit {
    per_second: u32,
    windows: Mutex<HashMap<String, Window>>,
}

impl RevocationLimit {
    /// A bound of `per_second` revocations per client per second; 0 means none.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: Mutex::default(),
        }
    }

    /// Takes one revocation from `client_id`'s allowance for the second `now`.
    /// Over the bound, the request is refused with `temporarily_unavailable`:
    /// RFC 7009 §2.2.1 has the client "assume the token still exists" and retry
    /// after a delay, which is what a refusal of this kind asks for.
    pub fn take(&self, client_id: &str, now: UnixTime) -> Result<(), OAuthError> {
        if self.per_second == 0 {
            return Ok(());
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= TRACKED_CLIENTS && !windows.contains_key(client_id) {
            windows.retain(|_, window| window.second == now);
        }
        let window = windows.entry(client_id.to_owned()).or_insert(Window {
            second: now,
            used: 0,
        });
        if window.second != now {
            *window = Window {
                second: now,
                used: 0,
            };
        }
        if window.used >= self.per_second {
            return Err(OAuthError::TemporarilyUnavailable);
        }
        window.used += 1;
        Ok(())
    }

    /// Gives back what [`RevocationLimit::take`] took at `now`, for a
    /// revocation that wrote nothing after all.
    pub fn give_back(&self, client_id: &str, now: UnixTime) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(window) = windows.get_mut(client_id)
            && window.second == now
        {
            window.used = window.used.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_800_000_000;

    #[test]
    fn a_client_gets_its_allowance_each_second_and_no_more() {
        let limit = RevocationLimit::new(2);
        assert!(limit.take("a", NOW).is_ok());
        assert!(limit.take("a", NOW).is_ok());
        assert_eq!(
            limit.take("a", NOW),
            Err(OAuthError::TemporarilyUnavailable)
        );
        assert!(limit.take("b", NOW).is_ok(), "clients are counted apart");
        assert!(
            limit.take("a", NOW + 1).is_ok(),
            "a new second, a new count"
        );
    }

    #[test]
    fn a_revocation_that_wrote_nothing_is_given_back() {
        let limit = RevocationLimit::new(1);
        limit.take("a", NOW).unwrap();
        limit.give_back("a", NOW);
        assert!(limit.take("a", NOW).is_ok());
        // Giving back in a later second does not lend the next one more.
        limit.give_back("a", NOW + 1);
        assert!(limit.take("a", NOW + 1).is_ok());
        assert!(limit.take("a", NOW + 1).is_err());
    }

    #[test]
    fn zero_means_no_bound() {
        let limit = RevocationLimit::new(0);
        for _ in 0..1000 {
            limit.take("a", NOW).unwrap();
        }
    }

    #[test]
    fn the_table_of_clients_stays_bounded() {
        let limit = RevocationLimit::new(1);
        for n in 0..3 * TRACKED_CLIENTS {
            limit
                .take(&format!("client-{n}"), NOW + n as UnixTime)
                .unwrap();
        }
        let tracked = limit.windows.lock().unwrap().len();
        assert!(tracked <= TRACKED_CLIENTS, "{tracked}");
    }
}
