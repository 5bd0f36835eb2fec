//! What the fuzz targets share: reference readings of the form and Basic rules,
//! written from the RFCs rather than from oauthd's code, so a target can check
//! that oauthd agrees with them; and the key ring the JWT targets verify with.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauthd::tokens::keys::{KeyMaterial, KeyRing, SigningAlg, generate};

/// Every algorithm oauthd signs with.
pub const ALGS: [SigningAlg; 4] = [
    SigningAlg::Es256,
    SigningAlg::EdDsa,
    SigningAlg::Rs256,
    SigningAlg::Hs256,
];

/// The fixed `kid` of the fuzz key for `alg`, so that seed tokens name a key
/// the ring holds in every run.
pub fn fuzz_kid(alg: SigningAlg) -> String {
    format!("fuzz-{}", alg.as_str().to_ascii_lowercase())
}

/// The HS256 secret of the fuzz ring. Fixed, unlike the asymmetric keys, so a
/// committed seed can carry a token that verifies.
pub const FUZZ_HS256_SECRET: &[u8] = b"oauthd-fuzz-hs256-secret-32bytes";

/// A ring with one freshly generated key per algorithm (HS256's secret fixed),
/// built once per process: RSA generation takes a while.
pub static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    let materials: Vec<KeyMaterial> = ALGS
        .into_iter()
        .map(|alg| {
            let mut material = generate(alg, 0, 0).unwrap_or_else(|err| panic!("{err}"));
            material.kid = fuzz_kid(alg);
            if alg == SigningAlg::Hs256 {
                material.private = FUZZ_HS256_SECRET.to_vec();
            }
            material
        })
        .collect();
    KeyRing::from_materials(&materials).unwrap_or_else(|err| panic!("{err}"))
});

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// One `application/x-www-form-urlencoded` name or value read strictly: `+` is
/// a space, `%XX` a byte, a `%` without two hex digits after it is an error,
/// and the bytes must be UTF-8.
pub fn strict_form_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        match raw[at] {
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            b'%' => {
                let high = hex_value(*raw.get(at + 1)?)?;
                let low = hex_value(*raw.get(at + 2)?)?;
                out.push(high << 4 | low);
                at += 3;
            }
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Why a form body is refused, per RFC 6749 §3.1 and SPEC §4.
#[derive(Debug, PartialEq, Eq)]
pub enum FormVerdict {
    /// Every parameter, decoded; none repeated.
    Accepted(HashMap<String, String>),
    /// Broken percent-encoding or bytes that are not UTF-8.
    Undecodable,
    /// A parameter sent twice (§3.1: "MUST NOT be included more than once").
    Repeated,
}

/// A whole form body read strictly: `&`-separated pairs (empty ones skipped),
/// split at the first `=`, each side decoded, no name twice.
pub fn strict_form(body: &[u8]) -> FormVerdict {
    let mut params = HashMap::new();
    let mut repeated = false;
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let (Some(name), Some(value)) = (strict_form_decode(name), strict_form_decode(value))
        else {
            return FormVerdict::Undecodable;
        };
        repeated |= params.insert(name, value).is_some();
    }
    if repeated {
        FormVerdict::Repeated
    } else {
        FormVerdict::Accepted(params)
    }
}

/// What an `Authorization` header says about Basic credentials (RFC 7617 §2,
/// with RFC 6749 §2.3.1's form-encoding of id and secret).
#[derive(Debug, PartialEq, Eq)]
pub enum BasicVerdict {
    /// Not the Basic scheme (or not a readable header): no Basic was tried.
    NotBasic,
    /// Basic, but the credentials cannot be read.
    Unreadable,
    /// Basic with this client id and secret.
    Credentials(String, String),
}

/// Reads an `Authorization` header value the way the RFCs describe it.
pub fn basic_verdict(value: &[u8]) -> BasicVerdict {
    // A header value is only text if it is visible ASCII (RFC 9110 §5.5).
    if !value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return BasicVerdict::NotBasic;
    }
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return BasicVerdict::NotBasic;
    };
    if !value[..space].eq_ignore_ascii_case(b"basic") {
        return BasicVerdict::NotBasic;
    }
    let token = value[space + 1..].trim_ascii();
    let Ok(decoded) = STANDARD.decode(token) else {
        return BasicVerdict::Unreadable;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return BasicVerdict::Unreadable;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return BasicVerdict::Unreadable;
    };
    match (
        strict_form_decode(id.as_bytes()),
        strict_form_decode(secret.as_bytes()),
    ) {
        (Some(id), Some(secret)) => BasicVerdict::Credentials(id, secret),
        _ => BasicVerdict::Unreadable,
    }
}
