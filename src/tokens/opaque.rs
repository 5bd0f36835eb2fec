//! Opaque access tokens (`--token-format opaque`): `oat_` credentials (SPEC §5)
//! the server stores only as hashes.

use super::credential::{self, CredentialKind};
use super::secret::hash_secret;

/// A freshly minted opaque token and the hash under which it is stored.
#[derive(Debug)]
pub(crate) struct OpaqueToken {
    /// The value handed to the client, once.
    pub value: String,
    /// What the database keeps.
    pub hash: String,
}

/// Mints an opaque token: an `oat_` credential, 256 random bits.
pub(crate) fn mint() -> OpaqueToken {
    let value = credential::mint(CredentialKind::AccessToken);
    let hash = hash_secret(&value);
    OpaqueToken { value, hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_are_oat_credentials_stored_as_their_hash() {
        let token = mint();
        assert_eq!(
            credential::parse(&token.value),
            Ok(CredentialKind::AccessToken)
        );
        assert_eq!(token.hash, hash_secret(&token.value));
        assert_ne!(token.value, mint().value);
    }
}
