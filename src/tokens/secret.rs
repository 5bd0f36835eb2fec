//! Server-generated secrets and how they are stored: random values, ids, and
//! the hash under which client secrets, refresh and opaque tokens are kept.
//! Their format since SPEC §5 is `tokens::credential`'s.
//!
//! They carry 256 bits of entropy, so a fast hash (SHA-256) is the right storage
//! for them: nobody can brute-force the preimage. Argon2 is for human passwords.
//! The hash covers the whole presented value, prefix included, so credentials
//! issued before the prefixes keep matching their rows.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{Rng as _, RngCore as _};
use subtle::ConstantTimeEq as _;
use uuid::Builder;

use crate::oauth::model::UnixTime;

/// A value that must never reach a log: `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call it only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `bytes` random bytes from a CSPRNG, in the URL-safe base64 alphabet without
/// padding (letters, digits, `-`, `_`), so it needs no escaping anywhere.
pub fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Whether `value` has the shape of [`random_urlsafe`]`(32)`: 43 characters of
/// the URL-safe alphabet. Session ids and CSRF tokens are checked with it
/// before anything is looked up or compared.
pub fn is_random_urlsafe_32(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// 256 random bits in the URL-safe alphabet, 43 characters: what every client
/// secret, refresh token and opaque access token looked like before SPEC §5
/// (`oauth::presented` still accepts the shape, and tests write such rows to
/// show they keep working). oauthd itself issues none any more.
pub fn new_secret() -> String {
    random_urlsafe(32)
}

/// A new identifier (client id, user id, jti): 128 bits in lowercase
/// hex, so that an id never starts with `-` and passes as a command-line
/// argument, a URL segment or a file name alike.
pub fn new_id() -> String {
    let id: u128 = rand::rng().random();
    format!("{id:032x}")
}

/// A new refresh-token family's id, in `new_id`'s shape but led by the time
/// it was made (a UUIDv7, RFC 9562): the families started in one second sit
/// side by side in the family index, so starting one writes to a page
/// already in memory rather than to a random page of the whole index. A
/// family id is never presented by a client, so it needs no secrecy. Its
/// random bits come from the thread's generator, as `new_id`'s do: `uuid`'s
/// own `new_v7` asks the kernel for them, a system call per family.
pub fn new_family_id(now: UnixTime) -> String {
    let millis = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
    let random: [u8; 10] = rand::rng().random();
    Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .simple()
        .to_string()
}

/// The stored form of a secret or token: SHA-256, URL-safe base64.
pub fn hash_secret(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, value.as_bytes()))
}

/// Whether `presented` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    hash_secret(presented)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_ids_have_the_shape_of_ids_and_sort_by_the_second_they_were_made() {
        let now = 1_800_000_000;
        let earlier: Vec<String> = (0..50).map(|_| new_family_id(now)).collect();
        let later = new_family_id(now + 1);
        for id in &earlier {
            assert_eq!(id.len(), 32);
            assert!(id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
            assert!(*id < later, "{id} sorts after {later}");
        }
        let distinct: std::collections::HashSet<_> = earlier.iter().collect();
        assert_eq!(distinct.len(), earlier.len());
    }

    #[test]
    fn legacy_secrets_carry_256_bits_in_the_urlsafe_alphabet() {
        let secret = new_secret();
        assert_eq!(secret.len(), 43);
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(secret, new_secret());
    }

    #[test]
    fn ids_are_128_bit_lowercase_hex() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_ne!(id, new_id());
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        use crate::tokens::credential::{CredentialKind, mint};
        for secret in [new_secret(), mint(CredentialKind::ClientSecret)] {
            let stored = hash_secret(&secret);
            assert!(secret_matches(&secret, &stored));
            assert!(!secret_matches(&new_secret(), &stored));
            assert!(!secret_matches(
                &mint(CredentialKind::ClientSecret),
                &stored
            ));
            assert!(!stored.contains(&secret));
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "[redacted]");
    }
}
