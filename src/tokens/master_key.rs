//! Encryption of private signing keys at rest (`--master-key`).
//!
//! Keys are sealed with AES-256-GCM under the master key, with the key id as
//! associated data so a sealed key cannot be swapped onto another row.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The configured master key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    /// The sealed value is damaged or was sealed under another master key.
    #[error("a signing key could not be decrypted: wrong master key or damaged data")]
    CannotOpen,
}

/// The master key that seals private signing keys.
pub struct MasterKey(LessSafeKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses a base64-encoded 32-byte key.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadMasterKey)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts `plaintext`; the output is base64 of nonce, ciphertext and tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut buffer = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SealError::CannotOpen)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `kid`.
    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| SealError::CannotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::CannotOpen)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| SealError::CannotOpen)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn sealed_keys_open_only_under_the_same_key_and_kid() {
        let master = MasterKey::from_base64(KEY).unwrap();
        let sealed = master.seal("kid-1", b"private").unwrap();
        assert!(!sealed.contains("private"));
        assert_eq!(master.open("kid-1", &sealed).unwrap(), b"private");
        assert!(master.open("kid-2", &sealed).is_err());
        let other = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[test]
    fn a_short_master_key_is_refused() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
