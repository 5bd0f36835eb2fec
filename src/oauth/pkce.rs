//! PKCE (RFC 7636), S256 only: `plain` would hand the verifier to whoever
//! reads the authorization request, which is what PKCE guards against
//! (RFC 9700 §2.1.1).

use crate::tokens::secret::secret_matches;

/// The one challenge method this server accepts.
pub const S256: &str = "S256";

/// Whether `value` has RFC 7636 §4.1's syntax for a verifier: 43 to 128
/// characters of `[A-Za-z0-9-._~]`.
pub fn is_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len()) && value.bytes().all(is_unreserved)
}

/// Whether `value` can be an S256 challenge: the base64url of a SHA-256,
/// 43 characters without padding (RFC 7636 §4.2).
pub fn is_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Whether `verifier` hashes to `challenge` under S256, compared in constant
/// time. S256's transformation is exactly how oauthd stores secrets:
/// base64url, no padding, of the SHA-256 of the ASCII value.
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    secret_matches(verifier, challenge)
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_verifier(verifier));
        assert!(is_s256_challenge(challenge));
        assert!(verifies(verifier, challenge));
        assert!(!verifies(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(!is_verifier(&"a".repeat(42)));
        assert!(is_verifier(&"a".repeat(43)));
        assert!(is_verifier(&"a".repeat(128)));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!is_s256_challenge(&"a".repeat(42)));
        assert!(!is_s256_challenge(&format!("{}=", "a".repeat(42))));
    }
}
