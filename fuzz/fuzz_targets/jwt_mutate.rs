//! JWT verification (src/tokens/jwt.rs) on structured mutations of a valid
//! token, for every algorithm oauthd signs with: the header's fields, the
//! claims, the signature and the token's shape are changed one way or another,
//! and a signature can be made genuine again by re-signing the new header and
//! payload with any key of the ring (`oauthd::fuzzing::sign_signing_input`), so
//! that the checks after the signature are reached too.
//!
//! Checked: a token verifies only if its signature is genuine for the exact
//! text it carries, by the key its `kid` names, under that key's own `alg` and
//! `typ: at+jwt`, with the claims its payload holds; and a token that is all of
//! that and carries the original claims does verify.

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use oauthd::fuzzing::{introspection_claims, sign_signing_input};
use oauthd::tokens::jwt::{JwtClaims, key_id, sign, verify};
use oauthd::tokens::keys::SigningAlg;
use oauthd_fuzz::{RING, fuzz_kid};
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Es256,
    EdDsa,
    Rs256,
    Hs256,
}

impl Alg {
    fn signing(self) -> SigningAlg {
        match self {
            Self::Es256 => SigningAlg::Es256,
            Self::EdDsa => SigningAlg::EdDsa,
            Self::Rs256 => SigningAlg::Rs256,
            Self::Hs256 => SigningAlg::Hs256,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Case {
    /// The key whose valid token is mutated.
    key: Alg,
    header: HeaderEdit,
    payload: PayloadEdit,
    signature: SignatureEdit,
    shape: Shape,
}

#[derive(Arbitrary, Debug)]
enum HeaderEdit {
    Keep,
    Fields {
        alg: AlgField,
        typ: TextField,
        kid: KidField,
        extra: Option<(String, String)>,
    },
    /// Any text as the header's JSON, base64url-encoded.
    Json(String),
    /// Any text as the header segment itself.
    Segment(String),
}

#[derive(Arbitrary, Debug)]
enum AlgField {
    Same,
    Of(Alg),
    None,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum TextField {
    Same,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum KidField {
    Same,
    Of(Alg),
    Absent,
    Number(i64),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum PayloadEdit {
    Keep,
    Claims(Claims),
    Json(String),
    Segment(String),
}

#[derive(Arbitrary, Debug)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    client_id: String,
    scope: String,
    username: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum SignatureEdit {
    /// The original token's signature.
    Keep,
    /// A genuine signature by this key over the new header and payload.
    Resign(Alg),
    /// The original signature with one bit flipped.
    FlipBit(u16),
    /// The original signature cut short.
    Truncate(u16),
    /// Any bytes, base64url-encoded.
    Bytes(Vec<u8>),
    /// Any text as the signature segment itself.
    Segment(String),
}

#[derive(Arbitrary, Debug)]
enum Shape {
    Exact,
    /// base64 padding on every segment.
    Padded,
    TrailingDot,
    ExtraSegment(String),
    NoSignatureSegment,
    /// A byte inserted at a position.
    Insert(u16, u8),
}

fn fixed_claims() -> JwtClaims {
    JwtClaims {
        iss: "http://localhost:3030".into(),
        sub: "fuzz-client".into(),
        aud: "http://localhost:3030".into(),
        exp: 4_000_000_000,
        iat: 1_700_000_000,
        nbf: 1_700_000_000,
        jti: "fuzz-jti".into(),
        client_id: "fuzz-client".into(),
        scope: "read write".into(),
        username: None,
    }
}

/// One valid token per algorithm, signed once: header, payload, signature.
static VALID: LazyLock<Vec<(Alg, [String; 3])>> = LazyLock::new(|| {
    [Alg::Es256, Alg::EdDsa, Alg::Rs256, Alg::Hs256]
        .into_iter()
        .map(|alg| {
            let key = RING.find(&fuzz_kid(alg.signing())).expect("fuzz key");
            let token = sign(key, &fixed_claims()).expect("sign");
            let parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            (alg, [parts[0].clone(), parts[1].clone(), parts[2].clone()])
        })
        .collect()
});

fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header_segment(key: Alg, original: &str, edit: HeaderEdit) -> String {
    let (alg, typ, kid, extra) = match edit {
        HeaderEdit::Keep => return original.to_owned(),
        HeaderEdit::Json(text) => return encode(text),
        HeaderEdit::Segment(text) => return text,
        HeaderEdit::Fields {
            alg,
            typ,
            kid,
            extra,
        } => (alg, typ, kid, extra),
    };
    let mut header = Map::new();
    let alg = match alg {
        AlgField::Same => Some(key.signing().as_str().to_owned()),
        AlgField::Of(other) => Some(other.signing().as_str().to_owned()),
        AlgField::None => Some("none".to_owned()),
        AlgField::Absent => None,
        AlgField::Other(text) => Some(text),
    };
    if let Some(alg) = alg {
        header.insert("alg".into(), Value::String(alg));
    }
    match typ {
        TextField::Same => {
            header.insert("typ".into(), json!("at+jwt"));
        }
        TextField::Absent => {}
        TextField::Other(text) => {
            header.insert("typ".into(), Value::String(text));
        }
    }
    let kid = match kid {
        KidField::Same => Some(json!(fuzz_kid(key.signing()))),
        KidField::Of(other) => Some(json!(fuzz_kid(other.signing()))),
        KidField::Absent => None,
        KidField::Number(n) => Some(json!(n)),
        KidField::Other(text) => Some(Value::String(text)),
    };
    if let Some(kid) = kid {
        header.insert("kid".into(), kid);
    }
    if let Some((name, value)) = extra {
        header.insert(name, Value::String(value));
    }
    encode(serde_json::to_vec(&header).expect("JSON"))
}

fn payload_segment(original: &str, edit: PayloadEdit) -> String {
    match edit {
        PayloadEdit::Keep => original.to_owned(),
        PayloadEdit::Claims(c) => encode(
            serde_json::to_vec(&JwtClaims {
                iss: c.iss,
                sub: c.sub,
                aud: c.aud,
                exp: c.exp,
                iat: c.iat,
                nbf: c.nbf,
                jti: c.jti,
                client_id: c.client_id,
                scope: c.scope,
                username: c.username,
            })
            .expect("JSON"),
        ),
        PayloadEdit::Json(text) => encode(text),
        PayloadEdit::Segment(text) => text,
    }
}

/// The signature segment, and the key it is genuine for over `signing_input`.
fn signature_segment(
    original: &str,
    original_input: &str,
    key: Alg,
    signing_input: &str,
    edit: SignatureEdit,
) -> (String, Option<Alg>) {
    let bytes = URL_SAFE_NO_PAD.decode(original).expect("our own signature");
    match edit {
        SignatureEdit::Keep => (
            original.to_owned(),
            (signing_input == original_input).then_some(key),
        ),
        SignatureEdit::Resign(signer) => {
            let ring_key = RING.find(&fuzz_kid(signer.signing())).expect("fuzz key");
            let signature =
                sign_signing_input(ring_key, signing_input.as_bytes()).expect("signature");
            (encode(signature), Some(signer))
        }
        SignatureEdit::FlipBit(bit) => {
            let mut bytes = bytes;
            let bit = usize::from(bit) % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            (encode(bytes), None)
        }
        SignatureEdit::Truncate(len) => {
            let len = usize::from(len) % bytes.len();
            (encode(&bytes[..len]), None)
        }
        SignatureEdit::Bytes(other) => (encode(other), None),
        SignatureEdit::Segment(text) => (text, None),
    }
}

fn padded(segment: &str) -> String {
    let pad = (4 - segment.len() % 4) % 4;
    format!("{segment}{}", "=".repeat(pad))
}

/// The header's JSON members, if the segment decodes to an object.
fn header_json(token: &str) -> Option<Map<String, Value>> {
    let segment = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fuzz_target!(|case: Case| {
    let (_, [h0, p0, s0]) = VALID
        .iter()
        .find(|(alg, _)| *alg == case.key)
        .expect("a valid token per algorithm");
    let payload_kept = matches!(case.payload, PayloadEdit::Keep);
    let header = header_segment(case.key, h0, case.header);
    let payload = payload_segment(p0, case.payload);
    let signing_input = format!("{header}.{payload}");
    let (signature, genuine_for) = signature_segment(
        s0,
        &format!("{h0}.{p0}"),
        case.key,
        &signing_input,
        case.signature,
    );
    let exact = matches!(case.shape, Shape::Exact);
    let token = match case.shape {
        Shape::Exact => format!("{signing_input}.{signature}"),
        Shape::Padded => format!(
            "{}.{}.{}",
            padded(&header),
            padded(&payload),
            padded(&signature)
        ),
        Shape::TrailingDot => format!("{signing_input}.{signature}."),
        Shape::ExtraSegment(extra) => format!("{signing_input}.{signature}.{extra}"),
        Shape::NoSignatureSegment => signing_input.clone(),
        Shape::Insert(at, byte) => {
            let mut bytes = format!("{signing_input}.{signature}").into_bytes();
            let at = usize::from(at) % (bytes.len() + 1);
            bytes.insert(at, byte);
            match String::from_utf8(bytes) {
                Ok(token) => token,
                Err(_) => return,
            }
        }
    };
    // A padding-free segment padded, or a byte inserted, may leave the token
    // as it was; only then may it still verify.
    let unchanged = exact || token == format!("{signing_input}.{signature}");
    let outcome = verify(&RING, &token);
    match &outcome {
        Ok(claims) => {
            let signer = genuine_for.filter(|_| unchanged);
            let signer =
                signer.unwrap_or_else(|| panic!("{token:?} verified without a genuine signature"));
            let kid = key_id(&token).expect("a verified token names its key");
            assert_eq!(
                kid,
                fuzz_kid(signer.signing()),
                "signed by one key, verified as another"
            );
            let header = header_json(&token).expect("a verified token has a JSON header");
            assert_eq!(header.get("alg"), Some(&json!(signer.signing().as_str())));
            assert_eq!(header.get("typ"), Some(&json!("at+jwt")));
            let payload_bytes = URL_SAFE_NO_PAD.decode(&payload).expect("payload base64");
            let sent: JwtClaims = serde_json::from_slice(&payload_bytes).expect("payload claims");
            assert_eq!(claims, &sent);
            let _ = introspection_claims(claims);
        }
        Err(rejection) => {
            // The original claims under a header naming the signer, its
            // algorithm and at+jwt, and nothing else: that must verify.
            let faithful = unchanged
                && payload_kept
                && genuine_for.is_some_and(|signer| {
                    header_json(&token).is_some_and(|h| {
                        h.len() == 3
                            && h.get("alg") == Some(&json!(signer.signing().as_str()))
                            && h.get("typ") == Some(&json!("at+jwt"))
                            && h.get("kid") == Some(&json!(fuzz_kid(signer.signing())))
                    })
                });
            assert!(
                !faithful,
                "{token:?} is genuine but was refused: {rejection:?}"
            );
        }
    }
});
