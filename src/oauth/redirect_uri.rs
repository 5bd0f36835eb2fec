//! Redirect URIs (SPEC §7, RFC 6749 §3.1.2, RFC 8252): which a client may
//! register, and whether a presented one is registered.
//!
//! Registration is strict because a redirect URI is where codes and tokens
//! go: an absolute URI (RFC 6749 §3.1.2: "MUST be an absolute URI") without
//! a fragment ("MUST NOT include a fragment component") or user-info, over
//! `https`, `http` on a loopback host (RFC 8252 §7.3), or, for a public
//! client only, a private-use scheme (RFC 8252 §7.1). The URI is stored as
//! given; parsing only decides whether it may be.
//!
//! Matching is exact, character for character: no normalisation, no prefix,
//! no case folding, because any leniency here is an open redirect. The one
//! exception is RFC 8252 §7.3: a native app listens on a loopback port the
//! operating system picks, so a public client's loopback `http` URI matches
//! whatever port the request names.

use super::model::Client;

/// The hosts that count as loopback (SPEC §7).
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Whether a client may register `uri` as a redirect URI (SPEC §7).
/// `public` says whether the client is public, the only kind that may use a
/// private-use scheme. `Err` carries a short reason, for an error message.
pub fn check_registrable(uri: &str, public: bool) -> Result<(), String> {
    check_characters(uri)?;
    if uri.contains('#') {
        return Err("a redirect URI may not have a fragment (#)".into());
    }
    let parsed = url::Url::parse(uri).map_err(|err| format!("not a valid absolute URI ({err})"))?;
    // The raw authority, not the parser's: it normalises hosts
    // (`http://127.1` becomes 127.0.0.1) and guesses at missing slashes,
    // while the URI is matched later exactly as written.
    let authority = raw_authority(uri);
    if authority.is_some_and(|authority| authority.contains('@'))
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err("a redirect URI may not carry user-info (user@)".into());
    }
    match parsed.scheme() {
        "https" => match authority {
            Some(authority) if !host_of(authority).is_empty() => Ok(()),
            _ => Err("an https URI needs a host after //".into()),
        },
        "http" => match authority.map(host_of) {
            Some(host) if LOOPBACK_HOSTS.contains(&host) => Ok(()),
            _ => Err(
                "http is allowed only on a loopback host (127.0.0.1, [::1] or localhost); use https"
                    .into(),
            ),
        },
        scheme if is_reverse_domain(scheme) => {
            if public {
                Ok(())
            } else {
                Err(format!(
                    "the private-use scheme {scheme}: is for public (native) clients only"
                ))
            }
        }
        scheme => Err(format!(
            "the scheme {scheme}: is not allowed: use https, http on a loopback host, \
             or a reverse-domain private-use scheme such as com.example.app:"
        )),
    }
}

/// Refuses what RFC 3986 does not allow in a URI (spaces, controls, quotes,
/// backslashes, non-ASCII, a `%` not followed by two hex digits). Such a
/// string could not be matched reliably, and spaces would break the
/// space-separated list the store keeps.
fn check_characters(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("a redirect URI may not be empty".into());
    }
    let bytes = uri.as_bytes();
    for (at, &byte) in bytes.iter().enumerate() {
        let allowed = byte.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&byte);
        if !allowed {
            return Err(if byte.is_ascii_whitespace() || byte.is_ascii_control() {
                "a redirect URI may not contain whitespace or control characters".into()
            } else {
                "a redirect URI may hold only the characters RFC 3986 allows; percent-encode the rest"
                    .into()
            });
        }
        let escape_ok = || {
            bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit)
        };
        if byte == b'%' && !escape_ok() {
            return Err("a % in a redirect URI must start a %XX escape".into());
        }
    }
    Ok(())
}

/// The authority of `scheme://authority/...` as written, if there is one.
fn raw_authority(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once(':')?;
    let rest = rest.strip_prefix("//")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The host of an authority without user-info: everything before the port.
fn host_of(authority: &str) -> &str {
    match authority.rfind(':') {
        // `[::1]` holds colons of its own: a port follows the bracket.
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    }
}

/// Whether `scheme` looks like a reversed domain name, `com.example.app`:
/// RFC 8252 §7.1 says apps "MUST use a URI scheme based on a domain name
/// under their control, expressed in reverse order". This also keeps out
/// `javascript:`, `data:`, `file:` and every other dot-less scheme.
fn is_reverse_domain(scheme: &str) -> bool {
    let mut labels = scheme.split('.');
    scheme.contains('.') && labels.all(|label| !label.is_empty())
}

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
    let host = host_of(authority);
    let port = authority[host.len()..].strip_prefix(':').unwrap_or("");
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
    fn registrable_uris() {
        // (uri, as a public client, as a confidential client)
        for (uri, public, confidential) in [
            ("https://app.example/cb", true, true),
            ("https://app.example:8443/cb?from=oauthd&x=%2F", true, true),
            ("https://app.example", true, true),
            ("HTTPS://app.example/cb", true, true),
            ("http://127.0.0.1/cb", true, true),
            ("http://127.0.0.1:51004/cb", true, true),
            ("http://[::1]:8080/", true, true),
            ("http://localhost/cb", true, true),
            ("com.example.app:/oauth2redirect", true, false),
            ("com.example.app://cb", true, false),
            ("com.example.app:cb", true, false),
        ] {
            assert_eq!(check_registrable(uri, true).is_ok(), public, "{uri} public");
            assert_eq!(
                check_registrable(uri, false).is_ok(),
                confidential,
                "{uri} confidential"
            );
        }
    }

    #[test]
    fn unregistrable_uris_say_why() {
        for (uri, reason) in [
            ("", "empty"),
            ("/cb", "absolute"),
            ("app.example/cb", "absolute"),
            ("//app.example/cb", "absolute"),
            ("https://app.example/cb#", "fragment"),
            ("https://app.example/cb#x", "fragment"),
            ("https://user@app.example/cb", "user-info"),
            ("https://user:pw@app.example/cb", "user-info"),
            ("http://localhost@evil.example/", "user-info"),
            ("com.example.app://me@cb", "user-info"),
            ("http://app.example/cb", "loopback"),
            ("http://127.0.0.2/cb", "loopback"),
            ("http://127.1/cb", "loopback"),
            ("http://127.0.0.1.evil.example/cb", "loopback"),
            ("http://LOCALHOST/cb", "loopback"),
            ("http:/127.0.0.1/cb", "loopback"),
            ("https:app.example/cb", "host"),
            ("https:///cb", "host"),
            ("https://app.example:99999/cb", "absolute"),
            ("javascript:alert(1)", "scheme javascript:"),
            ("JavaScript://%0aalert(1)", "scheme javascript:"),
            ("data:text/html,hi", "scheme data:"),
            ("file:///etc/passwd", "scheme file:"),
            ("myapp:/cb", "scheme myapp:"),
            ("com..app:/cb", "scheme com..app:"),
            ("https://app.example/a b", "whitespace"),
            ("https://app.example/cb\n", "whitespace"),
            (" https://app.example/cb", "whitespace"),
            ("https://app.example/cb\t", "whitespace"),
            ("https://app.example/\u{7f}", "control"),
            ("https://app.example\\@evil.example/", "RFC 3986"),
            ("https://app.example/<script>", "RFC 3986"),
            ("https://bücher.example/cb", "RFC 3986"),
            ("https://app.example/%zz", "%XX"),
            ("https://app.example/%2", "%XX"),
        ] {
            for public in [true, false] {
                let refused = check_registrable(uri, public).expect_err(uri);
                assert!(refused.contains(reason), "{uri:?}: {refused}");
            }
        }
        let confidential = check_registrable("com.example.app:/cb", false).unwrap_err();
        assert!(confidential.contains("public"), "{confidential}");
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
