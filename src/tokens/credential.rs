//! The format of every opaque credential oauthd issues (SPEC §5): a prefix that
//! names its kind, 256 random bits in base62, then a CRC-32 checksum of all that
//! precedes it, in base62 too.
//!
//! The prefix lets secret scanners and operators tell the kinds apart; the
//! checksum lets the server refuse a mistyped, truncated or made-up value
//! without a database lookup. The checksum is no authenticator (anyone can
//! compute it): a credential is still valid only if its hash is in the store.

use crc::{CRC_32_ISO_HDLC, Crc};
use rand::distr::{Alphanumeric, SampleString as _};

/// What a credential is for; its prefix says so (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// `oat_`: an opaque access token (`--token-format opaque`).
    AccessToken,
    /// `ort_`: a refresh token.
    RefreshToken,
    /// `oac_`: an authorization code (SPEC §7).
    AuthorizationCode,
    /// `oak_`: an API key (SPEC §8).
    ApiKey,
    /// `ocs_`: a client secret.
    ClientSecret,
}

impl CredentialKind {
    /// Every kind, in no particular order.
    pub const ALL: [Self; 5] = [
        Self::AccessToken,
        Self::RefreshToken,
        Self::AuthorizationCode,
        Self::ApiKey,
        Self::ClientSecret,
    ];

    /// The prefix, underscore included: `PREFIX_LEN` ASCII characters.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::AccessToken => "oat_",
            Self::RefreshToken => "ort_",
            Self::AuthorizationCode => "oac_",
            Self::ApiKey => "oak_",
            Self::ClientSecret => "ocs_",
        }
    }

    /// The kind whose prefix is exactly `prefix`.
    fn from_prefix(prefix: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.prefix().as_bytes() == prefix)
    }
}

/// Length of every prefix.
pub const PREFIX_LEN: usize = 4;
/// Base62 characters of randomness: 43 × log2(62) ≈ 256.03 bits, the least
/// count that reaches SPEC §5's 256.
pub const RANDOM_LEN: usize = 43;
/// Base62 digits of the checksum: 62^6 > 2^32 holds any CRC-32.
pub const CHECKSUM_LEN: usize = 6;
/// Length of every credential, in bytes (all ASCII).
pub const CREDENTIAL_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;

/// The digits of the checksum, most significant first. The order is part of
/// the format: changing it would refuse every credential issued before.
const BASE62_DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32/ISO-HDLC, the CRC-32 of zlib and Ethernet, so that a scanner in any
/// language can check a credential with its standard library.
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// A new credential of `kind`. The random part comes from the thread-local
/// CSPRNG, as every other secret does (`tokens::secret`); `Alphanumeric` is
/// uniform over exactly the 62 characters of base62.
pub fn mint(kind: CredentialKind) -> String {
    assemble(
        kind,
        &Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN),
    )
}

/// `kind`'s prefix, `body`, and their checksum. `mint` gives a random body;
/// tests and fuzz targets give chosen ones.
pub(crate) fn assemble(kind: CredentialKind, body: &str) -> String {
    let mut value = String::with_capacity(PREFIX_LEN + body.len() + CHECKSUM_LEN);
    value.push_str(kind.prefix());
    value.push_str(body);
    let checksum = checksum(value.as_bytes());
    value.extend(checksum.iter().map(|&digit| char::from(digit)));
    value
}

/// The CRC-32 of `bytes` as `CHECKSUM_LEN` base62 digits, zero-padded.
fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut rest = CRC32.checksum(bytes);
    let mut digits = [BASE62_DIGITS[0]; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62_DIGITS[(rest % 62) as usize];
        rest /= 62;
    }
    digits
}

/// Why a string is not a well-formed credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Not `CREDENTIAL_LEN` bytes long.
    WrongLength,
    /// No known prefix.
    UnknownPrefix,
    /// A character after the prefix is not base62.
    NotBase62,
    /// The checksum does not match what precedes it.
    BadChecksum,
}

/// The kind of `value` if it is a well-formed credential: the exact length, a
/// known prefix, base62 after it, and a matching checksum. Says nothing about
/// whether the credential exists; that takes the store.
pub fn parse(value: &str) -> Result<CredentialKind, Defect> {
    // Bytes, not chars: a value with multi-byte characters must be refused,
    // never sliced inside a character.
    let bytes = value.as_bytes();
    if bytes.len() != CREDENTIAL_LEN {
        return Err(Defect::WrongLength);
    }
    let (prefix, rest) = bytes.split_at(PREFIX_LEN);
    let kind = CredentialKind::from_prefix(prefix).ok_or(Defect::UnknownPrefix)?;
    if !rest.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Defect::NotBase62);
    }
    let (covered, presented_checksum) = bytes.split_at(CREDENTIAL_LEN - CHECKSUM_LEN);
    if checksum(covered) != presented_checksum {
        return Err(Defect::BadChecksum);
    }
    Ok(kind)
}

#[cfg(test)]
mod tests;
