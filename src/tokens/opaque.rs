//! Opaque access tokens (`--token-format opaque`): random values the server
//! stores only as hashes.

use super::secret::{hash_secret, new_secret};

/// A freshly minted opaque token and the hash under which it is stored.
#[derive(Debug)]
pub struct OpaqueToken {
    /// The value handed to the client, once.
    pub value: String,
    /// What the database keeps.
    pub hash: String,
}

/// Mints a 256-bit opaque token.
pub fn mint() -> OpaqueToken {
    let value = new_secret();
    let hash = hash_secret(&value);
    OpaqueToken { value, hash }
}
