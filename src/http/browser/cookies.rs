//! The two cookies of the browser pages (SPEC §7): the login session, and the
//! CSRF token every form echoes.
//!
//! CSRF is the double-submit pattern: a random value in a cookie and in a
//! hidden field of each form, compared on POST. Another site can make a
//! browser post a form here, but it can neither read this site's cookie nor
//! set it, so it cannot fill in the field. Nothing server-side is kept, so any
//! replica checks any form.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq as _;

use crate::tokens::secret::{is_random_urlsafe_32, random_urlsafe};

/// The session cookie's name (SPEC §7).
pub(crate) const SESSION_COOKIE: &str = "oauthd_session";

/// The CSRF cookie's name; the forms' hidden field is `csrf_token`.
pub(crate) const CSRF_COOKIE: &str = "oauthd_csrf";

/// The form field that echoes the CSRF cookie.
pub(crate) const CSRF_FIELD: &str = "csrf_token";

/// A value of this cookie in the request, if any (the first, if several).
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// How cookies are set: `Secure` when the issuer is `https`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CookiePolicy {
    pub(crate) secure: bool,
}

impl CookiePolicy {
    /// `Set-Cookie` for a session that lasts `max_age` seconds.
    pub(crate) fn session(self, id: &str, max_age: i64) -> HeaderValue {
        self.build(SESSION_COOKIE, id, max_age)
    }

    /// `Set-Cookie` that ends the session cookie.
    pub(crate) fn end_session(self) -> HeaderValue {
        self.build(SESSION_COOKIE, "", 0)
    }

    /// `Set-Cookie` for a CSRF token, for the browser's whole session.
    pub(crate) fn csrf(self, token: &str) -> HeaderValue {
        self.build(CSRF_COOKIE, token, -1)
    }

    /// A cookie that scripts cannot read, sent on same-site requests and
    /// top-level navigations (`SameSite=Lax`), for the whole site. A negative
    /// `max_age` makes it last as long as the browser's session.
    fn build(self, name: &'static str, value: &str, max_age: i64) -> HeaderValue {
        let mut cookie = Cookie::new(name, value.to_owned());
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie.set_secure(self.secure);
        if max_age >= 0 {
            cookie.set_max_age(cookie::time::Duration::seconds(max_age));
        }
        // Names and values here are ours: a session id or token is base64url.
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The CSRF token to put in a page's forms: the browser's own, if it has a
/// well-formed one, or a new one with the `Set-Cookie` that gives it.
pub(crate) fn csrf_token(headers: &HeaderMap) -> (String, Option<String>) {
    match read(headers, CSRF_COOKIE).filter(|token| is_random_urlsafe_32(token)) {
        Some(token) => (token, None),
        None => {
            let token = random_urlsafe(32);
            (token.clone(), Some(token))
        }
    }
}

/// Whether a form's `csrf_token` equals the browser's CSRF cookie.
pub(crate) fn csrf_matches(headers: &HeaderMap, field: Option<&str>) -> bool {
    match (read(headers, CSRF_COOKIE), field) {
        (Some(cookie), Some(field)) if is_random_urlsafe_32(&cookie) => {
            cookie.as_bytes().ct_eq(field.as_bytes()).into()
        }
        _ => false,
    }
}
