//! JWT parsing and verification (src/tokens/jwt.rs) on any string, the way
//! introspection reaches it: `looks_like_jwt`, `key_id`, `verify` directly and
//! through the `VerifiedTokens` cache, then the claims conversion. The ring has
//! one fresh key per algorithm under a fixed `kid`, so seeds name real keys.
//! Checks that the cache and `key_id` agree with `verify`, and that nothing but
//! a token of the fixed HS256 secret could ever verify.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use oauthd::fuzzing::introspection_claims;
use oauthd::oauth::presented::looks_like_jwt;
use oauthd::tokens::jwt::{JwtRejection, VerifiedTokens, key_id, verify};
use oauthd::tokens::keys::SigningAlg;
use oauthd_fuzz::{RING, fuzz_kid};

static CACHE: LazyLock<VerifiedTokens> = LazyLock::new(|| VerifiedTokens::new(64));

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = looks_like_jwt(token);
    let kid = key_id(token);
    let direct = verify(&RING, token);
    let cached = CACHE.verify(&RING, token);
    match (&direct, &cached) {
        (Ok(claims), Ok(from_cache)) => {
            assert_eq!(claims, from_cache.as_ref());
            // Only the HS256 secret is known outside this process; a forged
            // signature for any other key would be a finding.
            assert_eq!(kid.as_deref(), Ok(fuzz_kid(SigningAlg::Hs256).as_str()));
            let _ = introspection_claims(claims);
        }
        (Err(direct), Err(from_cache)) => assert_eq!(direct, from_cache),
        _ => panic!("verify says {direct:?}, the cache {cached:?}"),
    }
    if let Err(rejection) = &direct {
        // verify reads the header before anything else, as key_id does.
        match rejection {
            JwtRejection::Malformed => assert_eq!(kid, Err(JwtRejection::Malformed)),
            JwtRejection::UnknownKey => {
                assert!(kid.as_ref().is_ok_and(|kid| RING.find(kid).is_none()) || kid.is_err());
            }
            JwtRejection::WrongType | JwtRejection::BadSignature => {
                assert!(kid.as_ref().is_ok_and(|kid| RING.find(kid).is_some()));
            }
        }
    }
});
