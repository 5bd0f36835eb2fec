//! Redirect URIs (SPEC §7, RFC 6749 §3.1.2, RFC 8252): which a client may
//! register, and whether a presented one is registered.
//!
//! Matching is exact, character for character: no normalisation, no prefix,
//! no case folding, because any leniency here is an open redirect. The one
//! exception is RFC 8252 §7.3: a native app listens on a loopback port the
//! operating system picks, so a public client's loopback `http` URI matches
//! whatever port the request names.

use super::model::Client;

/// The hosts that count as loopback (SPEC §7).
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// The registered redirect URI `presented` names for `client`, if any.
pub fn registered<'a>(client: &'a Client, presented: &str) -> Option<&'a str> {
    client
        .redirect_uris
        .iter()
        .map(String::as_str)
        .find(|uri| *uri == presented || (client.is_public() && same_but_port(uri, presented)))
}

/// Whether two loopback `http` URIs differ at most in their port.
fn same_but_port(registered: &str, presented: &str) -> bool {
    match (loopback_parts(registered), loopback_parts(presented)) {
        (Some((host_a, rest_a)), Some((host_b, rest_b))) => host_a == host_b && rest_a == rest_b,
        _ => false,
    }
}

/// `(host, everything after the authority)` of a loopback `http` URI whose
/// port, if any, is digits.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = match authority.rfind(':') {
        // `[::1]` holds colons of its own: a port follows the bracket.
        Some(colon) if !authority[colon..].contains(']') => {
            (&authority[..colon], &authority[colon + 1..])
        }
        _ => (authority, ""),
    };
    let port_ok = port.bytes().all(|byte| byte.is_ascii_digit());
    (port_ok && LOOPBACK_HOSTS.contains(&host)).then_some((host, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::model::PkceRule;
    use crate::oauth::scope::ScopeSet;

    fn client(public: bool, uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            secret_hash: (!public).then(|| "hash".to_owned()),
            grant_types: Vec::new(),
            scopes: ScopeSet::default(),
            access_token_ttl: None,
            enabled: true,
            redirect_uris: uris.iter().map(|uri| (*uri).to_owned()).collect(),
            skip_consent: false,
            pkce: PkceRule::Required,
        }
    }

    #[test]
    fn only_the_exact_string_matches() {
        let web = client(false, &["https://app.example/cb"]);
        assert_eq!(
            registered(&web, "https://app.example/cb"),
            Some("https://app.example/cb")
        );
        for near in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example/c",
            "https://app.example:443/cb",
            "https://app.example/cb#",
            "https://app.example.evil/cb",
        ] {
            assert_eq!(registered(&web, near), None, "{near}");
        }
    }

    #[test]
    fn a_public_clients_loopback_uri_matches_on_any_port() {
        let native = client(
            true,
            &[
                "http://127.0.0.1/cb",
                "http://[::1]:8080/cb",
                "http://localhost:1/",
            ],
        );
        assert!(registered(&native, "http://127.0.0.1:51004/cb").is_some());
        assert!(registered(&native, "http://127.0.0.1/cb").is_some());
        assert!(registered(&native, "http://[::1]:9/cb").is_some());
        assert!(registered(&native, "http://localhost:65000/").is_some());
        for other in [
            "http://127.0.0.1:51004/other",
            "http://127.0.0.2:80/cb",
            "http://[::1]:9/cb?x",
            "https://127.0.0.1:5/cb",
            "http://127.0.0.1:80x/cb",
            "http://127.0.0.1.evil:80/cb",
            "http://localhost@evil:80/",
        ] {
            assert_eq!(registered(&native, other), None, "{other}");
        }
        // A confidential client's loopback URI is matched exactly.
        let web = client(false, &["http://127.0.0.1/cb"]);
        assert_eq!(registered(&web, "http://127.0.0.1:5/cb"), None);
    }
}
