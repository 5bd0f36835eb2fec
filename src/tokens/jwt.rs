//! JWT access tokens per RFC 9068: header `typ: at+jwt` with `kid`, and the
//! claims of SPEC §5.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::{Deserialize, Serialize};

use super::keys::{KeyRing, RingKey};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims oauthd puts in an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    /// Issuer.
    pub iss: String,
    /// The user's id, or the client id for `client_credentials`.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique token id, named by revocations.
    pub jti: String,
    /// The client the token was issued to (RFC 9068 §2.2).
    pub client_id: String,
    /// Granted scope, space-separated (RFC 9068 §2.2.3).
    pub scope: String,
    /// The user's login name, for password-grant tokens; lets introspection answer
    /// without a database round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// Why a token failed verification. Introspection turns every one of them into
/// `active: false`; the variants exist for logs and tests.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    /// Not a JWT, or a header oauthd does not accept (`alg: none` included).
    #[error("malformed token or header")]
    Malformed,
    /// No `kid`, or a `kid` this server does not hold.
    #[error("unknown signing key")]
    UnknownKey,
    /// `typ` is not `at+jwt` (RFC 9068 §4).
    #[error("not an access token")]
    WrongType,
    /// Bad signature, or an algorithm other than the key's own.
    #[error("signature or algorithm rejected")]
    BadSignature,
}

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(String);

/// Signs `claims` with `key`: the JWS compact serialization (RFC 7515 §7.1) of
/// the key's fixed header and the claims, signed with the key parsed at load.
pub fn sign(key: &RingKey, claims: &JwtClaims) -> Result<String, SignError> {
    // Sized for typical claims, so serializing them does not grow the buffer.
    let mut payload = Vec::with_capacity(384);
    serde_json::to_writer(&mut payload, claims).map_err(|err| SignError(err.to_string()))?;
    let mut token = String::with_capacity(key.encoded_header.len() + payload.len() * 4 / 3 + 360);
    token.push_str(&key.encoded_header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = key
        .key_pair
        .sign(token.as_bytes())
        .map_err(|_| SignError("the signing key refused to sign".into()))?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// The `kid` a token names, without verifying anything.
pub fn key_id(token: &str) -> Result<String, JwtRejection> {
    let header = decode_header(token).map_err(|_| JwtRejection::Malformed)?;
    header.kid.ok_or(JwtRejection::UnknownKey)
}

/// Verifies the signature against the key named by `kid`, accepting only that
/// key's algorithm: `none` never parses, and an HS256 header on an asymmetric key
/// is refused rather than checked with the public key as an HMAC secret.
///
/// Expiry is not checked here: the caller compares `exp` and `nbf` with its own
/// clock, because the core takes the time as a parameter.
pub fn verify(ring: &KeyRing, token: &str) -> Result<JwtClaims, JwtRejection> {
    let header = decode_header(token).map_err(|_| JwtRejection::Malformed)?;
    let kid = header.kid.as_deref().ok_or(JwtRejection::UnknownKey)?;
    let key = ring.find(kid).ok_or(JwtRejection::UnknownKey)?;
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(JwtRejection::WrongType);
    }
    let mut validation = Validation::new(key.alg.algorithm());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    decode::<JwtClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| JwtRejection::BadSignature)
}

/// Tokens whose signature has been checked, with their claims, so that a token
/// introspected again (every call of a resource server, typically) costs a map
/// lookup instead of a signature verification. Only the signature's verdict is
/// kept: expiry, revocation and client and user status are checked every time.
pub struct VerifiedTokens(quick_cache::sync::Cache<String, Arc<JwtClaims>>);

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (about 1 KiB each).
    pub fn new(capacity: usize) -> Self {
        Self(quick_cache::sync::Cache::new(capacity.max(1)))
    }

    /// Verifies `token` against `ring`, or answers from the cache.
    pub fn verify(&self, ring: &KeyRing, token: &str) -> Result<Arc<JwtClaims>, JwtRejection> {
        if let Some(claims) = self.0.get(token) {
            return Ok(claims);
        }
        let claims = Arc::new(verify(ring, token)?);
        self.0.insert(token.to_owned(), Arc::clone(&claims));
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::tokens::keys::{SigningAlg, generate};

    fn claims() -> JwtClaims {
        JwtClaims {
            iss: "http://localhost:3030".into(),
            sub: "client".into(),
            aud: "http://localhost:3030".into(),
            exp: 2000,
            iat: 1000,
            nbf: 1000,
            jti: "jti".into(),
            client_id: "client".into(),
            scope: "read".into(),
            username: None,
        }
    }

    fn ring(alg: SigningAlg) -> KeyRing {
        KeyRing::from_materials(&[generate(alg, 0, 0).unwrap()]).unwrap()
    }

    #[test]
    fn tokens_of_every_algorithm_verify() {
        for alg in [
            SigningAlg::Es256,
            SigningAlg::EdDsa,
            SigningAlg::Rs256,
            SigningAlg::Hs256,
        ] {
            let ring = ring(alg);
            let token = sign(ring.signing_key(alg, 1).unwrap(), &claims()).unwrap();
            assert_eq!(verify(&ring, &token).unwrap(), claims(), "{alg}");
        }
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let ring = ring(SigningAlg::Es256);
        let token = sign(ring.signing_key(SigningAlg::Es256, 1).unwrap(), &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.scope = "admin".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(verify(&ring, &tampered), Err(JwtRejection::BadSignature));
    }

    #[test]
    fn alg_none_is_rejected() {
        let ring = ring(SigningAlg::Es256);
        let kid = &ring.signing_key(SigningAlg::Es256, 1).unwrap().kid;
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
        assert_eq!(
            verify(&ring, &format!("{header}.{payload}.")),
            Err(JwtRejection::Malformed)
        );
    }
}
