//! Reading the browser endpoints' parameters: from the query of a `GET`, or
//! from a form body. Unlike the token endpoint, a malformed parameter does not
//! refuse the whole request here: the authorization endpoint must know whether
//! `client_id` and `redirect_uri` are sound before it may redirect an error,
//! so each value is decoded on its own and an undecodable one is kept as such.

use axum::http::{HeaderMap, header};

use crate::http::form::decode_component;
use crate::oauth::authorize::AuthorizeParameters;
use crate::oauth::check::carriers::is_form_media_type;

/// Every `name=value` pair of a query or form body, in order; a value that is
/// not valid percent-encoded UTF-8 is `None`. A pair whose name does not
/// decode is dropped: no parameter can be recognised by it.
pub(crate) fn pairs(raw: &[u8]) -> Vec<(String, Option<String>)> {
    raw.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode_component(name).ok()?;
            Some((name, decode_component(value).ok()))
        })
        .collect()
}

/// The authorization request among `pairs`.
pub(crate) fn authorize_parameters(pairs: &[(String, Option<String>)]) -> AuthorizeParameters {
    let mut params = AuthorizeParameters::default();
    for (name, value) in pairs {
        params.push(name, value.clone());
    }
    params
}

/// The one value of `name`, if it came exactly once and decoded.
pub(crate) fn single<'a>(pairs: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    let mut values = pairs.iter().filter(|(known, _)| known == name);
    match (values.next(), values.next()) {
        (Some((_, Some(value))), None) => Some(value),
        _ => None,
    }
}

/// Whether the request's body says it is a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_form_media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_decodes_on_its_own() {
        let pairs = pairs(b"client_id=a%20b&state=%zz&scope=read+write&%ff=1&prompt");
        assert_eq!(
            pairs,
            vec![
                ("client_id".to_owned(), Some("a b".to_owned())),
                ("state".to_owned(), None),
                ("scope".to_owned(), Some("read write".to_owned())),
                ("prompt".to_owned(), Some(String::new())),
            ]
        );
        assert_eq!(single(&pairs, "client_id"), Some("a b"));
        assert_eq!(single(&pairs, "state"), None);
    }
}
