use super::*;

/// Every character a substitution tries: base62, the rest of the URL-safe
/// alphabet, and a few that are in neither.
const SUBSTITUTES: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_. +/=";

#[test]
fn every_kind_round_trips() {
    for kind in CredentialKind::ALL {
        let value = mint(kind);
        assert_eq!(parse(&value), Ok(kind), "{value}");
        assert_eq!(value.len(), CREDENTIAL_LEN);
        assert!(value.starts_with(kind.prefix()));
        assert_ne!(value, mint(kind));
    }
}

#[test]
fn prefixes_are_distinct_and_of_one_length() {
    for kind in CredentialKind::ALL {
        assert_eq!(kind.prefix().len(), PREFIX_LEN);
        assert!(kind.prefix().ends_with('_'));
        let same: Vec<_> = CredentialKind::ALL
            .into_iter()
            .filter(|other| other.prefix() == kind.prefix())
            .collect();
        assert_eq!(same, [kind]);
    }
}

/// SPEC §3: secrets are in the URL-safe alphabet, so every client library can
/// send them raw or URL-encoded alike; SPEC §5: at least 256 random bits.
#[test]
fn credentials_stay_in_the_urlsafe_alphabet_and_carry_256_bits() {
    for kind in CredentialKind::ALL {
        let value = mint(kind);
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{value}"
        );
        let body = &value[PREFIX_LEN..PREFIX_LEN + RANDOM_LEN];
        assert!(body.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    assert!(RANDOM_LEN as f64 * 62f64.log2() >= 256.0);
}

#[test]
fn random_bodies_use_all_of_base62() {
    let seen: std::collections::HashSet<char> = (0..200)
        .flat_map(|_| {
            mint(CredentialKind::RefreshToken)[PREFIX_LEN..PREFIX_LEN + RANDOM_LEN]
                .chars()
                .collect::<Vec<_>>()
        })
        .collect();
    // 8600 draws over 62 characters: missing one has odds of about 1e-58.
    assert_eq!(seen.len(), 62);
}

/// CRC-32 detects every error confined to 32 consecutive bits, so every
/// single-character substitution, the prefix's included, is caught. Tried
/// exhaustively, for every kind.
#[test]
fn every_single_character_substitution_is_refused() {
    for kind in CredentialKind::ALL {
        let value = mint(kind);
        for position in 0..CREDENTIAL_LEN {
            let original = value.as_bytes()[position];
            for substitute in SUBSTITUTES.bytes().filter(|&b| b != original) {
                let mut changed = value.clone().into_bytes();
                changed[position] = substitute;
                let changed = String::from_utf8(changed).unwrap();
                assert!(parse(&changed).is_err(), "{changed} from {value}");
            }
        }
    }
}

#[test]
fn a_prefix_changed_into_another_kinds_fails_its_checksum() {
    let value = mint(CredentialKind::AccessToken);
    let as_api_key = value.replacen("oat_", "oak_", 1);
    assert_eq!(parse(&as_api_key), Err(Defect::BadChecksum));
    let as_refresh = value.replacen("oat_", "ort_", 1);
    assert_eq!(parse(&as_refresh), Err(Defect::BadChecksum));
}

#[test]
fn wrong_lengths_are_refused() {
    let value = mint(CredentialKind::ClientSecret);
    assert_eq!(parse(""), Err(Defect::WrongLength));
    assert_eq!(parse("ocs_"), Err(Defect::WrongLength));
    assert_eq!(
        parse(&value[..CREDENTIAL_LEN - 1]),
        Err(Defect::WrongLength)
    );
    assert_eq!(parse(&format!("{value}0")), Err(Defect::WrongLength));
    assert_eq!(parse(&format!("{value}\n")), Err(Defect::WrongLength));
    // Legacy values (43 URL-safe characters) are not credentials of this format.
    assert_eq!(
        parse(&crate::tokens::secret::new_secret()),
        Err(Defect::WrongLength)
    );
}

#[test]
fn unknown_prefixes_are_refused() {
    let value = mint(CredentialKind::RefreshToken);
    let body = &value[PREFIX_LEN..];
    for prefix in ["ORT_", "ort-", "oxx_", "rt__", "_ort"] {
        assert_eq!(
            parse(&format!("{prefix}{body}")),
            Err(Defect::UnknownPrefix),
            "{prefix}"
        );
    }
}

#[test]
fn characters_outside_base62_are_refused_without_panicking() {
    let value = mint(CredentialKind::AccessToken);
    for substitute in ["-", "_", ".", " ", "%", "+"] {
        let changed = format!("{}{substitute}{}", &value[..20], &value[21..]);
        assert_eq!(parse(&changed), Err(Defect::NotBase62), "{changed}");
    }
    // Two bytes in place of two characters: the length is right, the alphabet not.
    let changed = format!("{}é{}", &value[..20], &value[22..]);
    assert_eq!(changed.len(), CREDENTIAL_LEN);
    assert_eq!(parse(&changed), Err(Defect::NotBase62));
    // A multi-byte character across the end of the prefix.
    let changed = format!("oaté{}", &value[5..]);
    assert_eq!(changed.len(), CREDENTIAL_LEN);
    assert_eq!(parse(&changed), Err(Defect::UnknownPrefix));
    // In the checksum.
    let changed = format!("{}é", &value[..CREDENTIAL_LEN - 2]);
    assert_eq!(parse(&changed), Err(Defect::NotBase62));
}

/// The format is a contract with every credential already issued and every
/// scanner that checks them: these values were computed independently, with
/// Python's `zlib.crc32` and the digits `0-9A-Za-z`, most significant first.
#[test]
fn the_checksum_of_fixed_inputs_never_drifts() {
    let pinned = [
        (
            CredentialKind::RefreshToken,
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg",
            "ort_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg2wzQXt",
        ),
        // CRC 0x1680854e, whose first base62 digit is a padding zero.
        (
            CredentialKind::AccessToken,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "oat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0PY2aE",
        ),
        (
            CredentialKind::ClientSecret,
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
            "ocs_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz0ceN0g",
        ),
    ];
    for (kind, body, expected) in pinned {
        assert_eq!(assemble(kind, body), expected);
        assert_eq!(parse(expected), Ok(kind));
    }
    // The CRC-32/ISO-HDLC check value of its catalogue entry.
    assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
}
