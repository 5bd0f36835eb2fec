//! Turning the core's outcomes into responses: pages, redirects, cookies.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::cookies::{self, CookiePolicy};
use super::pages::Carried;
use super::params;
use crate::http::error::{http_status, retry_after};
use crate::http::routes::{HttpState, ShimStore};
use crate::oauth::authorize::{AuthorizeParameters, Outcome, ValidRequest};
use crate::oauth::error::{AuthorizePageError, OAuthError};
use crate::oauth::model::User;

/// How a redirect answers: `302` after a `GET`; `303` after a form's `POST`,
/// so that the browser does not post the form again to the client (RFC 9700
/// §4.11).
#[derive(Debug, Clone, Copy)]
pub(super) enum RedirectStatus {
    Found,
    SeeOther,
}

/// What a page needs from the request beyond the outcome.
pub(super) struct PageContext<'a, S> {
    pub(super) state: &'a HttpState<S>,
    pub(super) headers: &'a HeaderMap,
    pub(super) params: &'a AuthorizeParameters,
    pub(super) redirect: RedirectStatus,
}

impl<S: ShimStore> PageContext<'_, S> {
    /// The response for `outcome`.
    pub(super) fn outcome(&self, outcome: Outcome) -> Response {
        match outcome {
            Outcome::Page(err) => error_page(self.state, err),
            Outcome::Redirect(redirect) => redirect_to(&redirect.location(), self.redirect),
            Outcome::Login(request) => self.login_page(&request, None, ""),
            Outcome::Consent(request, user) => self.consent_page(&request, &user),
        }
    }

    /// The login page, with a failed attempt's error, if any.
    pub(super) fn login_page(
        &self,
        request: &ValidRequest,
        error: Option<&OAuthError>,
        username: &str,
    ) -> Response {
        let (csrf_token, new_cookie) = cookies::csrf_token(self.headers);
        // A login that could not be tried is the token endpoint's 503, with
        // its `Retry-After` when throttled; a refused one is a page like any.
        let status = match error {
            Some(err @ (OAuthError::Throttled { .. } | OAuthError::TemporarilyUnavailable)) => {
                http_status(err)
            }
            _ => StatusCode::OK,
        };
        let context = context! {
            client_name => request.client.name,
            error => error.map(OAuthError::description),
            username => username,
            csrf_token => csrf_token,
            request => self.carried(),
        };
        let mut page = pages(self.state).render(status, "login.html", context);
        if let Some(err) = error {
            retry_after(&mut page, err);
        }
        self.with_csrf_cookie(page, new_cookie)
    }

    fn consent_page(&self, request: &ValidRequest, user: &User) -> Response {
        let (csrf_token, new_cookie) = cookies::csrf_token(self.headers);
        let context = context! {
            client_name => request.client.name,
            username => user.username,
            scopes => request.scope.iter().collect::<Vec<_>>(),
            csrf_token => csrf_token,
            request => self.carried(),
        };
        let page = pages(self.state).render(StatusCode::OK, "consent.html", context);
        self.with_csrf_cookie(page, new_cookie)
    }

    fn carried(&self) -> Vec<Carried<'_>> {
        self.params
            .entries()
            .map(|(name, value)| Carried { name, value })
            .collect()
    }

    fn with_csrf_cookie(&self, page: Response, new_cookie: Option<String>) -> Response {
        with_csrf_cookie(self.state, page, new_cookie)
    }
}

/// `page`, with the `Set-Cookie` of a CSRF token minted for it, if one was.
pub(super) fn with_csrf_cookie<S>(
    state: &HttpState<S>,
    mut page: Response,
    new_cookie: Option<String>,
) -> Response {
    if let Some(token) = new_cookie {
        page.headers_mut()
            .append(header::SET_COOKIE, cookie_policy(state).csrf(&token));
    }
    page
}

/// The fields of a form `POST` whose CSRF token matches the browser's
/// cookie; otherwise the answer that refuses it, having changed nothing.
// The error is a finished response, built once on the error path.
#[allow(clippy::result_large_err)]
pub(super) fn checked_form<S>(
    state: &HttpState<S>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, Option<String>)>, Response> {
    if !params::is_form(headers) {
        return Err(not_a_form(state));
    }
    let pairs = params::pairs(body);
    if !cookies::csrf_matches(headers, params::single(&pairs, cookies::CSRF_FIELD)) {
        return Err(csrf_refused(state));
    }
    Ok(pairs)
}

/// oauthd's own error page: the request cannot go back to the client.
pub(super) fn error_page<S>(state: &HttpState<S>, err: AuthorizePageError) -> Response {
    let status = match err {
        AuthorizePageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    message_page(state, status, err.description())
}

/// A page that only says `description`.
pub(super) fn message_page<S>(
    state: &HttpState<S>,
    status: StatusCode,
    description: &str,
) -> Response {
    pages(state).render(
        status,
        "error.html",
        context! { description => description },
    )
}

/// The answer to a form whose CSRF token is missing or wrong: nothing changes.
fn csrf_refused<S>(state: &HttpState<S>) -> Response {
    message_page(
        state,
        StatusCode::BAD_REQUEST,
        "The form has expired or did not come from this site. Go back, reload the page and try again.",
    )
}

/// The answer to a form `POST` whose body is not a form.
pub(super) fn not_a_form<S>(state: &HttpState<S>) -> Response {
    message_page(
        state,
        StatusCode::BAD_REQUEST,
        OAuthError::not_a_form().description(),
    )
}

pub(super) fn redirect_to(location: &str, status: RedirectStatus) -> Response {
    let status = match status {
        RedirectStatus::Found => StatusCode::FOUND,
        RedirectStatus::SeeOther => StatusCode::SEE_OTHER,
    };
    match HeaderValue::from_str(location) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        // A registered URI is printable ASCII, and the parameters are encoded.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

pub(super) fn pages<S>(state: &HttpState<S>) -> &super::Pages {
    &state.settings.pages
}

pub(super) fn cookie_policy<S>(state: &HttpState<S>) -> CookiePolicy {
    CookiePolicy {
        secure: state.settings.issuer.starts_with("https://"),
    }
}

/// `GET /oauth/assets/style.css`.
pub(super) async fn style<S: ShimStore>(State(state): State<HttpState<S>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        pages(&state).style().to_owned(),
    )
        .into_response()
}
