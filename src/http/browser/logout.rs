//! `/oauth/logout`: `GET` asks, `POST` ends the session (SPEC §7). A `GET`
//! never signs anyone out, so a link or an image on another site cannot.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use minijinja::context;

use super::cookies::{self, CSRF_FIELD, SESSION_COOKIE};
use super::params::{self, single};
use super::render;
use crate::http::routes::{HttpState, ShimStore};
use crate::oauth::sessions;

/// `GET /oauth/logout`: the confirmation.
pub(crate) async fn confirm<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
) -> Response {
    let (csrf_token, new_cookie) = cookies::csrf_token(&headers);
    let mut page = render::pages(&state).render(
        StatusCode::OK,
        "logout.html",
        context! { csrf_token => csrf_token, signed_out => false },
    );
    if let Some(token) = new_cookie {
        page.headers_mut().append(
            header::SET_COOKIE,
            render::cookie_policy(&state).csrf(&token),
        );
    }
    page
}

/// `POST /oauth/logout`: ends the session and clears its cookie.
pub(crate) async fn log_out<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !params::is_form(&headers) {
        return render::not_a_form(&state);
    }
    let pairs = params::pairs(&body);
    if !cookies::csrf_matches(&headers, single(&pairs, CSRF_FIELD)) {
        return render::csrf_refused(&state);
    }
    if let Some(session) = cookies::read(&headers, SESSION_COOKIE)
        && let Err(err) = sessions::end(state.service.core(), &session).await
    {
        return render::message_page(
            &state,
            crate::http::error::http_status(&err),
            err.description(),
        );
    }
    let mut page = render::pages(&state).render(
        StatusCode::OK,
        "logout.html",
        context! { signed_out => true },
    );
    page.headers_mut().append(
        header::SET_COOKIE,
        render::cookie_policy(&state).end_session(),
    );
    page
}
