//! The revoked `jti`s a server keeps in memory, in a compact form.
//!
//! Every live revocation is held by every replica, so its size is multiplied
//! by the fleet. The `jti`s this server mints (`tokens::secret::new_id`) are
//! 128 random bits written as 32 lowercase hex digits; such a `jti` is kept as
//! its 16 bytes plus a 4-byte expiry, one 20-byte hash-table entry (about 24
//! to 48 bytes with the table's spare capacity and control bytes) instead of a
//! `String` and its heap allocation. Any other `jti` (none is minted today, but
//! rows are data) falls back to a table of strings.
//!
//! Entries leave once their token has expired: [`RevokedSet::prune_if_due`]
//! sweeps the table at most once a minute, so an entry may outlive its token
//! by up to a minute, when the token is refused for its expiry anyway.

use std::collections::HashMap;

use crate::oauth::model::UnixTime;

/// How often expired entries are swept out, seconds.
const PRUNE_INTERVAL: UnixTime = 60;

/// A `jti` of 32 lowercase hex digits, as four words: a `u128` would be
/// 16-byte aligned and pad each entry from 20 to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CompactJti([u32; 4]);

impl CompactJti {
    /// The compact form of `jti`, if it has exactly the shape `new_id` gives
    /// it. Exactly: an uppercase or shorter spelling of the same number is
    /// another `jti` and goes to the fallback table.
    fn parse(jti: &str) -> Option<Self> {
        let bytes = jti.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut value: u128 = 0;
        for &byte in bytes {
            let digit = match byte {
                b'0'..=b'9' => byte - b'0',
                b'a'..=b'f' => byte - b'a' + 10,
                _ => return None,
            };
            value = (value << 4) | u128::from(digit);
        }
        // Truncation is the point: each word takes 32 of the 128 bits.
        let words = [
            value as u32,
            (value >> 32) as u32,
            (value >> 64) as u32,
            (value >> 96) as u32,
        ];
        Some(Self(words))
    }
}

/// An expiry in 4 bytes: seconds since the epoch, saturated (good until 2106).
fn compact_expiry(expires_at: UnixTime) -> u32 {
    u32::try_from(expires_at.max(0)).unwrap_or(u32::MAX)
}

/// Revoked `jti`s with the expiry of the token each names.
#[derive(Debug, Default)]
pub(super) struct RevokedSet {
    compact: HashMap<CompactJti, u32>,
    other: HashMap<Box<str>, UnixTime>,
    next_prune: UnixTime,
}

impl RevokedSet {
    /// Records that `jti` is revoked until `expires_at`.
    pub(super) fn insert(&mut self, jti: &str, expires_at: UnixTime) {
        match CompactJti::parse(jti) {
            Some(key) => {
                let expiry = self.compact.entry(key).or_default();
                *expiry = (*expiry).max(compact_expiry(expires_at));
            }
            None => {
                let expiry = self.other.entry(jti.into()).or_insert(expires_at);
                *expiry = (*expiry).max(expires_at);
            }
        }
    }

    /// Makes room for `additional` more compact entries at once.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.compact.reserve(additional);
    }

    /// Whether `jti` is revoked.
    pub(super) fn contains(&self, jti: &str) -> bool {
        match CompactJti::parse(jti) {
            Some(key) => self.compact.contains_key(&key),
            None => self.other.contains_key(jti),
        }
    }

    /// How many revocations are held.
    pub(super) fn len(&self) -> usize {
        self.compact.len() + self.other.len()
    }

    /// Drops the entries of tokens expired at `now`, if the last sweep is a
    /// [`PRUNE_INTERVAL`] old: the sweep visits every entry, so it must not run
    /// on every sync.
    pub(super) fn prune_if_due(&mut self, now: UnixTime) {
        if now < self.next_prune {
            return;
        }
        self.next_prune = now + PRUNE_INTERVAL;
        self.prune(now);
    }

    /// Drops the entries of tokens expired at `now`.
    fn prune(&mut self, now: UnixTime) {
        let cutoff = compact_expiry(now);
        self.compact.retain(|_, expiry| *expiry > cutoff);
        self.other.retain(|_, expiry| *expiry > now);
        // A table that emptied after a wave of revocations gives its memory back.
        if self.compact.capacity() > 4 * self.compact.len().max(1024) {
            self.compact.shrink_to_fit();
        }
        if self.other.capacity() > 4 * self.other.len().max(64) {
            self.other.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_800_000_000;

    fn minted() -> String {
        crate::tokens::secret::new_id()
    }

    #[test]
    fn an_entry_packs_into_twenty_bytes() {
        assert_eq!(std::mem::size_of::<(CompactJti, u32)>(), 20);
    }

    #[test]
    fn inserted_jtis_are_contained_and_others_are_not() {
        let mut set = RevokedSet::default();
        let (a, b) = (minted(), minted());
        set.insert(&a, NOW + 60);
        assert!(set.contains(&a));
        assert!(!set.contains(&b));
        assert_eq!(set.len(), 1);
        set.insert(&a, NOW + 30);
        assert_eq!(set.len(), 1, "inserting again keeps one entry");
    }

    #[test]
    fn minted_jtis_take_the_compact_form() {
        let jti = minted();
        let key = CompactJti::parse(&jti).unwrap();
        let value = u128::from_str_radix(&jti, 16).unwrap();
        assert_eq!(key.0[0], value as u32);
        assert_eq!(key.0[3], (value >> 96) as u32);
        let mut set = RevokedSet::default();
        set.insert(&jti, NOW + 60);
        assert_eq!((set.compact.len(), set.other.len()), (1, 0));
    }

    #[test]
    fn other_jtis_fall_back_and_stay_distinct_from_compact_ones() {
        let lower = "0123456789abcdef0123456789abcdef";
        let upper = lower.to_uppercase();
        let mut set = RevokedSet::default();
        set.insert(&upper, NOW + 60);
        set.insert("legacy-uuid-1234", NOW + 60);
        assert!(set.contains(&upper));
        assert!(set.contains("legacy-uuid-1234"));
        assert!(
            !set.contains(lower),
            "another spelling of the number is another jti"
        );
        assert!(!set.contains(&lower[1..]));
        assert_eq!((set.compact.len(), set.other.len()), (0, 2));
        set.insert(lower, NOW + 60);
        assert!(set.contains(lower));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn expired_entries_are_dropped_by_the_next_due_sweep() {
        let mut set = RevokedSet::default();
        let (short, long) = (minted(), minted());
        set.insert(&short, NOW + 10);
        set.insert(&long, NOW + 1000);
        set.insert("odd", NOW + 10);
        set.prune_if_due(NOW);
        assert_eq!(set.len(), 3, "nothing has expired yet");
        set.prune_if_due(NOW + 11);
        assert_eq!(set.len(), 3, "the next sweep is not due yet");
        set.prune_if_due(NOW + PRUNE_INTERVAL);
        assert!(!set.contains(&short));
        assert!(!set.contains("odd"));
        assert!(set.contains(&long));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_later_expiry_wins() {
        let mut set = RevokedSet::default();
        let jti = minted();
        set.insert(&jti, NOW + 1000);
        set.insert(&jti, NOW + 10);
        set.prune(NOW + 100);
        assert!(set.contains(&jti));
    }

    #[test]
    fn an_emptied_table_gives_its_memory_back() {
        let mut set = RevokedSet::default();
        for _ in 0..20_000 {
            set.insert(&minted(), NOW + 10);
        }
        let full = set.compact.capacity();
        set.prune(NOW + 11);
        assert_eq!(set.len(), 0);
        assert!(set.compact.capacity() < full / 4);
    }
}
