//! What a presented string is: a JWT, a prefixed credential of SPEC §5, a
//! legacy value issued before the prefixes, or nothing oauthd ever issued.
//!
//! This is the one place that decides. Every lookup asks it first, so that a
//! value that cannot be of the kind looked for (a mistyped credential, an
//! access token sent as a refresh token, random noise) costs no database
//! round trip.

use crate::tokens::credential::{self, CredentialKind};

/// What releases before SPEC §5 issued: 32 random bytes in URL-safe base64
/// without padding (`tokens::secret::new_secret`), 43 characters.
pub const LEGACY_LEN: usize = 43;

/// The kinds that existed, unprefixed, before SPEC §5. Authorization codes and
/// API keys came later and were always prefixed.
const KINDS_WITH_LEGACY_FORM: [CredentialKind; 3] = [
    CredentialKind::AccessToken,
    CredentialKind::RefreshToken,
    CredentialKind::ClientSecret,
];

/// A presented string, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// Shaped like a JWT (RFC 7519 compact form); its signature is not checked.
    Jwt(&'a str),
    /// A well-formed credential of this kind: right prefix, length, alphabet and
    /// checksum. Whether it exists is for the store to say.
    Credential(CredentialKind, &'a str),
    /// Shaped like a value issued before SPEC §5; which kind it was, only the
    /// store knows. Kept working until it expires or is rotated.
    Legacy(&'a str),
    /// Nothing oauthd issued, then or now: refused without a lookup.
    Malformed,
}

impl Presented<'_> {
    /// Whether a store lookup for a credential of `kind` could find this value:
    /// a well-formed credential of that kind, or a legacy value of a kind that
    /// had one. A refresh-token lookup is thus skipped for an `oat_` value.
    pub fn is_lookup_candidate_for(&self, kind: CredentialKind) -> bool {
        match self {
            Self::Credential(presented, _) => *presented == kind,
            Self::Legacy(_) => KINDS_WITH_LEGACY_FORM.contains(&kind),
            Self::Jwt(_) | Self::Malformed => false,
        }
    }

    /// The kind the prefix names, for a well-formed credential.
    pub fn kind(&self) -> Option<CredentialKind> {
        match self {
            Self::Credential(kind, _) => Some(*kind),
            Self::Jwt(_) | Self::Legacy(_) | Self::Malformed => None,
        }
    }
}

/// Classifies `value`. A value with a known prefix and the credential's length
/// whose alphabet or checksum fails is `Malformed`: SPEC §5 has it refused
/// before any lookup. A legacy value may start with `ort_` by chance; it is 43
/// characters long, not 53, so it stays legacy.
pub fn classify(value: &str) -> Presented<'_> {
    if looks_like_jwt(value) {
        return Presented::Jwt(value);
    }
    match credential::parse(value) {
        Ok(kind) => Presented::Credential(kind, value),
        Err(_) if is_legacy(value) => Presented::Legacy(value),
        Err(_) => Presented::Malformed,
    }
}

/// Whether `token` has the shape of a JWT (three parts, two dots) rather than
/// of an opaque value: neither credentials nor legacy values contain a dot.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// Whether `value` has the shape of a legacy value: `LEGACY_LEN` characters of
/// the URL-safe base64 alphabet.
fn is_legacy(value: &str) -> bool {
    value.len() == LEGACY_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::credential::{CREDENTIAL_LEN, PREFIX_LEN, mint};
    use crate::tokens::secret::new_secret;

    #[test]
    fn a_jwt_is_three_parts() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        assert_eq!(classify(jwt), Presented::Jwt(jwt));
        // The rule is the shape only; verification is the JWT module's job.
        assert_eq!(classify(".."), Presented::Jwt(".."));
        assert_eq!(classify("a.b"), Presented::Malformed);
        assert_eq!(classify("a.b.c.d"), Presented::Malformed);
    }

    #[test]
    fn a_minted_credential_is_its_kind() {
        for kind in CredentialKind::ALL {
            let value = mint(kind);
            assert_eq!(classify(&value), Presented::Credential(kind, &value));
            assert_eq!(classify(&value).kind(), Some(kind));
        }
    }

    #[test]
    fn a_known_prefix_with_a_bad_checksum_or_alphabet_is_malformed() {
        let value = mint(CredentialKind::RefreshToken);
        let last = value.as_bytes()[CREDENTIAL_LEN - 1];
        let other = if last == b'0' { '1' } else { '0' };
        let bad_checksum = format!("{}{other}", &value[..CREDENTIAL_LEN - 1]);
        assert_eq!(classify(&bad_checksum), Presented::Malformed);
        let bad_alphabet = format!("{}-{}", &value[..10], &value[11..]);
        assert_eq!(bad_alphabet.len(), CREDENTIAL_LEN);
        assert_eq!(classify(&bad_alphabet), Presented::Malformed);
    }

    #[test]
    fn what_the_previous_release_issued_is_legacy() {
        for _ in 0..50 {
            let value = new_secret();
            assert_eq!(classify(&value), Presented::Legacy(&value));
        }
        let with_dash = "abc-def_ghi".repeat(4);
        let with_dash = &with_dash[..LEGACY_LEN];
        assert_eq!(classify(with_dash), Presented::Legacy(with_dash));
    }

    #[test]
    fn a_legacy_value_that_starts_like_a_prefix_stays_legacy() {
        let value = format!("ort_{}", &new_secret()[PREFIX_LEN..]);
        assert_eq!(value.len(), LEGACY_LEN);
        assert_eq!(classify(&value), Presented::Legacy(&value));
    }

    #[test]
    fn anything_else_is_malformed() {
        let legacy = new_secret();
        for value in [
            String::new(),
            " ".into(),
            legacy[..LEGACY_LEN - 1].to_owned(),
            format!("{legacy}A"),
            format!("{}=", &legacy[..LEGACY_LEN - 1]),
            format!("{}+", &legacy[..LEGACY_LEN - 1]),
            format!("{}é", &legacy[..LEGACY_LEN - 2]),
            // A prefixed credential that lost its checksum.
            mint(CredentialKind::AccessToken)[..CREDENTIAL_LEN - 6].to_owned(),
            "x".repeat(CREDENTIAL_LEN),
        ] {
            assert_eq!(classify(&value), Presented::Malformed, "{value:?}");
        }
    }

    #[test]
    fn lookups_are_skipped_for_values_of_another_kind() {
        let access = mint(CredentialKind::AccessToken);
        let presented = classify(&access);
        assert!(presented.is_lookup_candidate_for(CredentialKind::AccessToken));
        assert!(!presented.is_lookup_candidate_for(CredentialKind::RefreshToken));
        assert!(!presented.is_lookup_candidate_for(CredentialKind::ClientSecret));
    }

    #[test]
    fn legacy_values_are_looked_up_only_for_kinds_that_had_them() {
        let legacy = new_secret();
        let presented = classify(&legacy);
        assert_eq!(presented.kind(), None);
        for kind in [
            CredentialKind::AccessToken,
            CredentialKind::RefreshToken,
            CredentialKind::ClientSecret,
        ] {
            assert!(presented.is_lookup_candidate_for(kind), "{kind:?}");
        }
        assert!(!presented.is_lookup_candidate_for(CredentialKind::AuthorizationCode));
        assert!(!presented.is_lookup_candidate_for(CredentialKind::ApiKey));
    }

    #[test]
    fn jwts_and_malformed_values_are_never_looked_up() {
        for presented in [Presented::Jwt("a.b.c"), Presented::Malformed] {
            for kind in CredentialKind::ALL {
                assert!(!presented.is_lookup_candidate_for(kind));
            }
            assert_eq!(presented.kind(), None);
        }
    }
}
