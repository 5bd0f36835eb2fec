//! What a presented string is (src/oauth/presented.rs, over the credential
//! format of src/tokens/credential.rs), checked against SPEC §5's rules on any
//! string, not only for crashes:
//! - `classify` answers for every string, and its answer holds: a `Credential`
//!   parses as its kind, has its prefix and the credential's length; `Legacy`
//!   has the legacy shape; `Jwt` two dots; a lookup is offered only for those;
//! - a credential built from the input, and a freshly minted one, classify as
//!   their kind;
//! - no one-character change of either classifies as a `Credential`.
//!
//! Input: the whole of it, if UTF-8, is classified. Then the first byte picks
//! the kind, the next `RANDOM_LEN` bytes (zero-padded) the body, one more the
//! position of the change and the rest, read as UTF-8, the character put there
//! (its first byte, read as Latin-1, when the rest is not UTF-8).

#![no_main]

use libfuzzer_sys::fuzz_target;
use oauthd::fuzzing::assemble_credential;
use oauthd::oauth::presented::{LEGACY_LEN, Presented, classify};
use oauthd::tokens::credential::{CREDENTIAL_LEN, CredentialKind, RANDOM_LEN, mint, parse};

/// Where body bytes land; the order is the target's own, any will do.
const BASE62: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_answer(text);
    }
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = CredentialKind::ALL[usize::from(pick) % CredentialKind::ALL.len()];
    let body: String = (0..RANDOM_LEN)
        .map(|at| char::from(BASE62[usize::from(rest.get(at).copied().unwrap_or(0)) % 62]))
        .collect();
    let built = assemble_credential(kind, &body);
    let minted = mint(kind);
    let position = rest
        .get(RANDOM_LEN)
        .map_or(0, |&byte| usize::from(byte) % CREDENTIAL_LEN);
    let tail = rest.get(RANDOM_LEN + 1..).unwrap_or_default();
    let replacement = match std::str::from_utf8(tail) {
        Ok(text) => text.chars().next(),
        Err(_) => tail.first().map(|&byte| char::from(byte)),
    };
    for credential in [&built, &minted] {
        assert_eq!(
            classify(credential),
            Presented::Credential(kind, credential.as_str()),
            "{credential}"
        );
        check_answer(credential);
        let Some(replacement) = replacement else {
            continue;
        };
        let mut changed: Vec<char> = credential.chars().collect();
        if changed[position] == replacement {
            continue;
        }
        changed[position] = replacement;
        let changed: String = changed.into_iter().collect();
        check_answer(&changed);
        assert!(
            !matches!(classify(&changed), Presented::Credential(..)),
            "{changed:?}, one character off {credential}"
        );
    }
});

/// The rules `classify`'s answer for `text` must keep.
fn check_answer(text: &str) {
    let presented = classify(text);
    match presented {
        Presented::Credential(kind, value) => {
            assert_eq!(value, text);
            assert_eq!(parse(text), Ok(kind), "{text:?}");
            assert!(text.starts_with(kind.prefix()), "{text:?}");
            assert_eq!(text.len(), CREDENTIAL_LEN);
        }
        Presented::Legacy(value) => {
            assert_eq!(value, text);
            assert_eq!(text.len(), LEGACY_LEN);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text:?}"
            );
            assert!(parse(text).is_err());
        }
        Presented::Jwt(value) => {
            assert_eq!(value, text);
            assert_eq!(text.matches('.').count(), 2);
            assert!(parse(text).is_err());
        }
        Presented::Malformed => assert!(parse(text).is_err(), "{text:?}"),
    }
    for kind in CredentialKind::ALL {
        let candidate = presented.is_lookup_candidate_for(kind);
        match presented {
            Presented::Credential(found, _) => assert_eq!(candidate, found == kind),
            Presented::Jwt(_) | Presented::Malformed => assert!(!candidate),
            Presented::Legacy(_) => {}
        }
    }
}
