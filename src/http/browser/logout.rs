//! `/oauth/logout`: `GET` asks, `POST` ends the session (SPEC §7). A `GET`
//! never signs anyone out, so a link or an image on another site cannot.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use minijinja::context;

use super::cookies::{self, SESSION_COOKIE};
use super::render;
use crate::http::routes::{HttpState, ShimStore};
use crate::oauth::sessions;

/// `GET /oauth/logout`: the confirmation.
pub(crate) async fn confirm<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
) -> Response {
    let (csrf_token, new_cookie) = cookies::csrf_token(&headers);
    let page = render::pages(&state).render(
        StatusCode::OK,
        "logout.html",
        context! { csrf_token => csrf_token, signed_out => false },
    );
    render::with_csrf_cookie(&state, page, new_cookie)
}

/// `POST /oauth/logout`: ends the session and clears its cookie.
pub(crate) async fn log_out<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = render::checked_form(&state, &headers, &body) {
        return refused;
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
