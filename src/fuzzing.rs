//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` feature (off by default). Each is a thin wrapper over a
//! crate-private item, so the normal build's visibility stays as it is and the
//! targets exercise exactly the code the server runs.

use crate::tokens::keys::RingKey;

/// Signs `signing_input` (a JWS `header.payload`, RFC 7515 §5.1) with `key`,
/// the way `tokens::jwt::sign` signs, but over any bytes: a target can then
/// give verification headers and payloads that `sign` would never produce,
/// carrying a genuine signature. `None` if the key refuses to sign.
pub fn sign_signing_input(key: &RingKey, signing_input: &[u8]) -> Option<Vec<u8>> {
    key.key_pair.sign(signing_input).ok()
}

/// What introspection makes of verified claims (`oauth::issuance`'s
/// `from_jwt_claims`): `None` when they cannot describe one of our tokens.
pub fn introspection_claims(
    claims: &crate::tokens::jwt::JwtClaims,
) -> Option<crate::oauth::model::AccessClaims> {
    crate::oauth::from_jwt_claims(claims)
}

/// A credential of `kind` with a chosen body instead of a random one
/// (`tokens::credential`'s `assemble`), so that a target's credentials come
/// from its input and a finding replays.
pub fn assemble_credential(kind: crate::tokens::credential::CredentialKind, body: &str) -> String {
    crate::tokens::credential::assemble(kind, body)
}
