//! Signing keys: generation, the key ring that signs and verifies, and the JWKS.
//!
//! Rotation follows SPEC §5: a new key is published before it signs (its
//! `activates_at` lies in the future), and a retired key stays published until
//! every token it signed has expired.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

use super::secret::random_urlsafe;

/// The JWS algorithms oauthd signs with (RFC 7518).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256, the default.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    Rs256,
    /// HMAC SHA-256. The key is secret, so it is never published in the JWKS and
    /// only oauthd itself can verify such tokens (through introspection).
    Hs256,
}

impl SigningAlg {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Hs256 => "HS256",
        }
    }

    /// The jsonwebtoken algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Rs256 => Algorithm::RS256,
            Self::Hs256 => Algorithm::HS256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Es256, Self::EdDsa, Self::Rs256, Self::Hs256]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unsupported signing algorithm {s:?} (ES256, EdDSA, RS256, HS256)")
            })
    }
}

/// Why key material could not be generated or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library refused to generate a key.
    #[error("key generation failed for {0}")]
    Generate(SigningAlg),
    /// Stored key material could not be parsed.
    #[error("signing key {kid} is unusable: {reason}")]
    Unusable {
        /// The key's id.
        kid: String,
        /// What was wrong.
        reason: String,
    },
}

/// A signing key as the database holds it, private part in the clear (the store
/// seals it with the master key, when one is configured).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Key id, the JWT `kid`.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 PEM for asymmetric keys, the raw secret for HS256.
    pub private: Vec<u8>,
    /// When the key was generated.
    pub created_at: i64,
    /// From when it signs new tokens; it is published from creation.
    pub activates_at: i64,
    /// From when it no longer signs; `None` while it is current.
    pub deactivated_at: Option<i64>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activates_at", &self.activates_at)
            .field("deactivated_at", &self.deactivated_at)
            .finish_non_exhaustive()
    }
}

/// Generates a new key for `alg`. Blocking (RSA generation takes a while): call it
/// from `spawn_blocking` or the CLI.
pub fn generate(alg: SigningAlg, now: i64, activates_at: i64) -> Result<KeyMaterial, KeyError> {
    let fail = |_| KeyError::Generate(alg);
    let private = match alg {
        SigningAlg::Es256 => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(fail)?;
            pkcs8_pem(doc.as_ref())
        }
        SigningAlg::EdDsa => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            // PKCS#8 v1: jsonwebtoken's PEM reader does not accept the v2 form
            // (with the public key embedded) that `generate_pkcs8` writes.
            let doc = Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(fail)?;
            pkcs8_pem(doc.as_ref())
        }
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(fail)?;
            let der = pair.as_der().map_err(fail)?;
            pkcs8_pem(der.as_ref())
        }
        SigningAlg::Hs256 => random_urlsafe(32).into_bytes(),
    };
    Ok(KeyMaterial {
        kid: random_urlsafe(12),
        alg,
        private,
        created_at: now,
        activates_at,
        deactivated_at: None,
    })
}

fn pkcs8_pem(der: &[u8]) -> Vec<u8> {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der)).into_bytes()
}

/// A private key parsed once, when the ring is loaded. Parsing a PKCS#8 key
/// derives its public half, which costs as much as a signature; doing it per
/// token would double the cost of every token.
// A ring holds a handful of keys, so the size of the largest variant is moot.
#[allow(clippy::large_enum_variant)]
pub(crate) enum KeyPair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Hmac(hmac::Key),
}

impl KeyPair {
    // Every algorithm is named: a new one must not parse as any other.
    fn parse(alg: SigningAlg, private: &[u8]) -> Result<Self, String> {
        let der = || {
            pem::parse(private)
                .map(pem::Pem::into_contents)
                .map_err(|err| err.to_string())
        };
        let reject = |err: aws_lc_rs::error::KeyRejected| err.to_string();
        Ok(match alg {
            SigningAlg::Hs256 => Self::Hmac(hmac::Key::new(hmac::HMAC_SHA256, private)),
            SigningAlg::Es256 => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der()?)
                    .map_err(reject)?,
            ),
            SigningAlg::EdDsa => {
                Self::Ed25519(Ed25519KeyPair::from_pkcs8(&der()?).map_err(reject)?)
            }
            SigningAlg::Rs256 => {
                Self::Rsa(aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der()?).map_err(reject)?)
            }
        })
    }

    /// The JWS signature of `message` (RFC 7518 §3: ECDSA as fixed-size r || s).
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        match self {
            Self::Ecdsa(pair) => Ok(pair.sign(&SystemRandom::new(), message)?.as_ref().to_vec()),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Self::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )?;
                Ok(signature)
            }
            Self::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
        }
    }
}

/// A key ready to sign and verify.
pub struct RingKey {
    /// Key id.
    pub kid: String,
    /// Algorithm; verification accepts this one only.
    pub alg: SigningAlg,
    /// Signs.
    pub(crate) key_pair: KeyPair,
    /// The JWS header of every token this key signs, already base64url-encoded:
    /// it is the same for all of them.
    pub(crate) encoded_header: String,
    /// Verifies.
    pub decoding: DecodingKey,
    /// The public JWK; `None` for HS256, whose key is secret.
    pub public_jwk: Option<Jwk>,
    /// From when it signs.
    pub activates_at: i64,
    /// From when it no longer signs.
    pub deactivated_at: Option<i64>,
}

impl RingKey {
    fn from_material(material: &KeyMaterial) -> Result<Self, KeyError> {
        let unusable = |reason: String| KeyError::Unusable {
            kid: material.kid.clone(),
            reason,
        };
        let algorithm = material.alg.algorithm();
        let key_pair = KeyPair::parse(material.alg, &material.private).map_err(unusable)?;
        // Every algorithm is named: a new one must not load as any other.
        let signing_pem = match material.alg {
            SigningAlg::Hs256 => None,
            SigningAlg::Es256 => Some(EncodingKey::from_ec_pem(&material.private)),
            SigningAlg::EdDsa => Some(EncodingKey::from_ed_pem(&material.private)),
            SigningAlg::Rs256 => Some(EncodingKey::from_rsa_pem(&material.private)),
        };
        let (decoding, public_jwk) = match signing_pem {
            None => (DecodingKey::from_secret(&material.private), None),
            Some(encoding) => {
                let encoding = encoding.map_err(|err| unusable(err.to_string()))?;
                let mut jwk = Jwk::from_encoding_key(&encoding, algorithm)
                    .map_err(|err| unusable(err.to_string()))?;
                jwk.common.key_id = Some(material.kid.clone());
                jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                let decoding =
                    DecodingKey::from_jwk(&jwk).map_err(|err| unusable(err.to_string()))?;
                (decoding, Some(jwk))
            }
        };
        let mut header = Header::new(algorithm);
        header.typ = Some(super::jwt::ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(material.kid.clone());
        let header = serde_json::to_vec(&header).map_err(|err| unusable(err.to_string()))?;
        Ok(Self {
            kid: material.kid.clone(),
            alg: material.alg,
            key_pair,
            encoded_header: URL_SAFE_NO_PAD.encode(header),
            decoding,
            public_jwk,
            activates_at: material.activates_at,
            deactivated_at: material.deactivated_at,
        })
    }

    fn signs_at(&self, now: i64) -> bool {
        self.activates_at <= now && self.deactivated_at.is_none_or(|end| end > now)
    }
}

/// Every known key, parsed once.
#[derive(Default)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// Parses the stored keys. A key that cannot be parsed is an error: silently
    /// dropping it would make its tokens fail verification.
    pub fn from_materials(materials: &[KeyMaterial]) -> Result<Self, KeyError> {
        let keys = materials
            .iter()
            .map(RingKey::from_material)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// The key that signs new `alg` tokens at `now`: among those active, the one
    /// that activated last (ties broken by kid, so every replica picks the same).
    pub fn signing_key(&self, alg: SigningAlg, now: i64) -> Option<&RingKey> {
        self.keys
            .iter()
            .filter(|key| key.alg == alg && key.signs_at(now))
            .max_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)))
    }

    /// The key named by a token's `kid`.
    pub fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// The JWKS (RFC 7517 §5): every public key that is current, about to become
    /// current, or retired less than `retention` seconds ago (the longest a token
    /// it signed can live).
    pub fn jwks(&self, now: i64, retention: i64) -> JwkSet {
        let keys = self
            .keys
            .iter()
            .filter(|key| key.deactivated_at.is_none_or(|end| end + retention > now))
            .filter_map(|key| key.public_jwk.clone())
            .collect();
        JwkSet { keys }
    }

    /// The algorithms of the keys the ring holds, each once, for discovery.
    pub fn published_algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self.keys.iter().map(|key| key.alg.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_key_that_loads() {
        for alg in [
            SigningAlg::Es256,
            SigningAlg::EdDsa,
            SigningAlg::Rs256,
            SigningAlg::Hs256,
        ] {
            let material = generate(alg, 0, 0).unwrap();
            let ring = KeyRing::from_materials(std::slice::from_ref(&material)).unwrap();
            assert_eq!(ring.signing_key(alg, 1).unwrap().kid, material.kid);
            let published = ring.jwks(1, 10).keys.len();
            assert_eq!(published, usize::from(alg != SigningAlg::Hs256), "{alg}");
        }
    }

    #[test]
    fn a_new_key_is_published_before_it_signs_and_the_old_one_after() {
        let mut old = generate(SigningAlg::EdDsa, 0, 0).unwrap();
        let new = generate(SigningAlg::EdDsa, 100, 110).unwrap();
        old.deactivated_at = Some(110);
        let ring = KeyRing::from_materials(&[old.clone(), new.clone()]).unwrap();
        assert_eq!(
            ring.signing_key(SigningAlg::EdDsa, 105).unwrap().kid,
            old.kid
        );
        assert_eq!(ring.jwks(105, 60).keys.len(), 2);
        assert_eq!(
            ring.signing_key(SigningAlg::EdDsa, 110).unwrap().kid,
            new.kid
        );
        assert_eq!(ring.jwks(169, 60).keys.len(), 2);
        assert_eq!(ring.jwks(170, 60).keys.len(), 1);
    }
}
