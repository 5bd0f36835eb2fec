//! Token formats and key material: JWTs (RFC 9068), the prefixed credential
//! format (SPEC §5), opaque tokens, the signing key ring, client secrets and
//! user passwords. Knows nothing of the protocol's rules or of storage.

pub mod credential;
pub mod jwt;
pub mod keys;
pub(crate) mod master_key;
pub(crate) mod opaque;
pub mod password;
pub mod secret;
