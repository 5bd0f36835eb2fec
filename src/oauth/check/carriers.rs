//! Where a request carries its credential (SPEC §9), in terms every adapter
//! can give: header names and values, URIs and a body. `/oauth/check` and
//! Envoy's `Check` read the same places through these functions, so a request
//! is checked alike whichever proxy passes it on.
//!
//! Every value found counts, empty ones too: `Authorization: Bearer` with no
//! token is a credential, and a malformed one. Decoding is lenient, so a `%`
//! without two hex digits stays as it is: a credential with one is refused as
//! malformed rather than dropped, and the rest of a query still counts. Work
//! is one pass over input that the transport has already bounded (the HTTP
//! head limit, the gRPC message cap).

/// Headers in which proxies pass the original request's URI: Traefik and
/// Caddy send `X-Forwarded-Uri`, nginx configurations `X-Original-URI`, and
/// some proxies `X-Original-URL` with scheme and host.
const ORIGINAL_URI_HEADERS: [&str; 3] = ["x-forwarded-uri", "x-original-uri", "x-original-url"];

/// Query parameters that carry a credential.
pub(crate) const QUERY_CARRIERS: [&str; 2] = ["access_token", "api_key"];

/// Adds what one header carries to `credentials`: the token of
/// `Authorization: Bearer` (the scheme in any case, RFC 6750 §2.1 and RFC
/// 9110 §11.1), the value of `access_token` or `X-API-Key`, and the
/// credentials in the query of an original-URI header. Header names match in
/// any case; other headers, and other `Authorization` schemes (Basic, say),
/// are for the upstream.
pub(crate) fn header_credentials(name: &str, value: &str, credentials: &mut Vec<String>) {
    if name.eq_ignore_ascii_case("authorization") {
        if let Some((scheme, token)) = value.split_once(' ').or(Some((value, "")))
            && scheme.eq_ignore_ascii_case("bearer")
        {
            credentials.push(token.trim().to_owned());
        }
    } else if name.eq_ignore_ascii_case("access_token") || name.eq_ignore_ascii_case("x-api-key") {
        credentials.push(value.trim().to_owned());
    } else if ORIGINAL_URI_HEADERS
        .iter()
        .any(|header| name.eq_ignore_ascii_case(header))
    {
        credentials.extend(query_credentials(value));
    }
}

/// The credentials in the query of a URI, a path with a query, or a full URL.
pub(crate) fn query_credentials(uri: &str) -> impl Iterator<Item = String> + '_ {
    let without_fragment = uri.split('#').next().unwrap_or_default();
    let query = without_fragment.split_once('?').map(|(_, query)| query);
    query_pairs(query)
        .filter(|(name, _)| QUERY_CARRIERS.contains(&name.as_ref()))
        .map(|(_, value)| value.into_owned())
}

/// The `access_token` fields of a form-encoded body (RFC 6750 §2.2); the
/// caller knows whether the body is one.
pub(crate) fn form_credentials(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    form_urlencoded::parse(body)
        .filter(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

/// Whether a `Content-Type` value names `application/x-www-form-urlencoded`.
pub(crate) fn is_form_media_type(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|mime| {
        mime.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The pairs of a query, decoded leniently.
pub(crate) fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_headers(headers: &[(&str, &str)]) -> Vec<String> {
        let mut credentials = Vec::new();
        for (name, value) in headers {
            header_credentials(name, value, &mut credentials);
        }
        credentials
    }

    #[test]
    fn every_header_carrier_is_read_in_any_case_and_empty_values_count() {
        let found = from_headers(&[
            ("Authorization", "bEaReR  one "),
            ("authorization", "Bearer"),
            ("ACCESS_TOKEN", "two"),
            ("x-api-key", " "),
            ("x-other", "three"),
            ("authorization", "Basic dXNlcjpwYXNz"),
        ]);
        assert_eq!(found, ["one", "", "two", ""]);
    }

    #[test]
    fn the_query_of_an_original_uri_counts_in_all_three_headers() {
        let found = from_headers(&[
            ("x-forwarded-uri", "/api?api_key=k1"),
            ("X-Original-URI", "/api?x=1&access_token=t1#access_token=no"),
            (
                "x-original-url",
                "https://api.example/p?access%5Ftoken=t2&scope=a",
            ),
        ]);
        assert_eq!(found, ["k1", "t1", "t2"]);
    }

    #[test]
    fn broken_percent_encoding_stays_in_the_credential_and_spares_the_rest() {
        let found: Vec<String> = query_credentials("/p?q=100%&%zz=1&access_token=ab%zz").collect();
        assert_eq!(found, ["ab%zz"]);
        let found: Vec<String> = query_credentials("/p?api_key=&access_token=%ff").collect();
        assert_eq!(found, ["", "\u{fffd}"]);
    }

    #[test]
    fn a_form_body_carries_only_access_token() {
        let found: Vec<String> = form_credentials(b"a=b&access_token=t%2B1&api_key=k").collect();
        assert_eq!(found, ["t+1"]);
        assert!(is_form_media_type(
            "Application/X-WWW-Form-Urlencoded; charset=utf-8"
        ));
        assert!(!is_form_media_type("application/json"));
    }
}
