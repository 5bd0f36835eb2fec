//! How a check's decision is worded, the same for every proxy: the HTTP
//! status, RFC 6750's `WWW-Authenticate` challenge, the six identity headers
//! and the JSON body of SPEC §9. `/oauth/check` sends it as it is; Envoy's
//! `Check` wraps it in a `CheckResponse`.

use serde_json::{Map, Value, json};

use super::{CheckOutcome, Denial};
use crate::oauth::introspect::ActiveToken;
use crate::oauth::validate::{CredentialType, ValidCredential};

/// The realm of every challenge.
const REALM: &str = "oauthd";

/// The identity headers of SPEC §9, in the order the answer carries them.
const IDENTITY_HEADERS: [&str; 6] = [
    "x-auth-subject",
    "x-auth-client-id",
    "x-auth-username",
    "x-auth-scope",
    "x-auth-credential",
    "x-auth-expires",
];

/// A decision, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckAnswer {
    /// 200, 401, 403, 400 or 503; never a redirect (nginx turns a 3xx from
    /// `auth_request` into a 500).
    pub(crate) status: u16,
    /// The challenge, for the rows of the table that have one.
    pub(crate) www_authenticate: Option<String>,
    /// The six `X-Auth-*` headers, in [`IDENTITY_HEADERS`] order. Always all
    /// six, empty when there is no value (every one on a denial), so that a
    /// proxy copying them overwrites whatever a client forged.
    pub(crate) identity: [(&'static str, String); 6],
    /// JSON: the introspection members on a 200, otherwise `error` and
    /// `error_description` (`{}` for a request with no credential).
    pub(crate) body: String,
}

impl CheckAnswer {
    /// Words `outcome`.
    pub(crate) fn of(outcome: &CheckOutcome) -> Self {
        match outcome {
            CheckOutcome::Allowed(valid) => Self {
                status: 200,
                www_authenticate: None,
                identity: Self::identity_headers(valid),
                body: allowed_body(valid).to_string(),
            },
            CheckOutcome::Denied(denial) => Self {
                status: status_of(denial),
                www_authenticate: challenge(denial),
                identity: IDENTITY_HEADERS.map(|name| (name, String::new())),
                body: denied_body(denial).to_string(),
            },
        }
    }
}

fn status_of(denial: &Denial) -> u16 {
    match denial {
        Denial::NoCredential | Denial::InvalidToken(_) => 401,
        Denial::InsufficientScope { .. } => 403,
        Denial::InvalidRequest(_) => 400,
        Denial::Unavailable(_) => 503,
    }
}

/// RFC 6750 §3. Descriptions and scopes never hold `"` or `\` (scope tokens
/// exclude them, RFC 6749 §3.3, and the descriptions are ours), so they go
/// between quotes as they are.
fn challenge(denial: &Denial) -> Option<String> {
    let mut value = format!("Bearer realm=\"{REALM}\"");
    match denial {
        Denial::Unavailable(_) => return None,
        Denial::NoCredential => {}
        Denial::InsufficientScope { required } => {
            value.push_str(&format!(
                ", error=\"insufficient_scope\", scope=\"{required}\""
            ));
        }
        Denial::InvalidToken(_) | Denial::InvalidRequest(_) => {
            let code = denial.error_code().unwrap_or_default();
            let description = denial.description().unwrap_or_default();
            value.push_str(&format!(
                ", error=\"{code}\", error_description=\"{description}\""
            ));
        }
    }
    Some(value)
}

fn denied_body(denial: &Denial) -> Value {
    let mut body = Map::new();
    if let Denial::Unavailable(_) = denial {
        body.insert("error".into(), "temporarily_unavailable".into());
    } else if let Some(code) = denial.error_code() {
        body.insert("error".into(), code.into());
    }
    if let Some(description) = denial.description() {
        body.insert("error_description".into(), description.into_owned().into());
    }
    Value::Object(body)
}

/// The members introspection would answer for the credential (RFC 7662 §2.2).
fn allowed_body(valid: &ValidCredential) -> Value {
    let active = ActiveToken::from(valid.clone());
    let mut body = json!({
        "active": true,
        "scope": active.scope,
        "client_id": active.client_id,
        "token_type": active.token_type,
        "exp": active.exp,
        "iat": active.iat,
        "sub": active.sub,
    });
    if let Value::Object(members) = &mut body {
        let optional = [
            ("username", active.username.map(Value::from)),
            ("nbf", active.nbf.map(Value::from)),
            ("aud", active.aud.map(Value::from)),
            ("iss", active.iss.map(Value::from)),
            ("jti", active.jti.map(Value::from)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                members.insert(name.into(), value);
            }
        }
    }
    body
}

impl CheckAnswer {
    /// The six identity headers for `valid`, alone: what an allowed answer
    /// carries that Envoy passes on, without the body it never sends.
    pub(crate) fn identity_headers(valid: &ValidCredential) -> [(&'static str, String); 6] {
        let credential = match valid.kind {
            CredentialType::ApiKey => "api_key",
            CredentialType::AccessToken | CredentialType::RefreshToken => "access_token",
        };
        let values = [
            valid.subject().to_owned(),
            valid.client_id.clone(),
            valid.username.clone().unwrap_or_default(),
            valid.scope.to_string(),
            credential.to_owned(),
            valid.expires_at.to_string(),
        ];
        let mut values = values.into_iter();
        IDENTITY_HEADERS.map(|name| (name, values.next().unwrap_or_default()))
    }
}
