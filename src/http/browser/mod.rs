//! The browser endpoints of SPEC §7: the authorization endpoint, oauthd's own
//! login and consent pages, and logout. The core decides every step
//! (`oauth::authorize`); these handlers read cookies and forms, check the
//! CSRF token, and render what the core decided.

mod authorize;
mod cookies;
mod logout;
mod pages;
mod params;
mod render;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

pub(crate) use pages::Pages;

use super::routes::{HttpState, ShimStore};

/// The browser routes, each response sent with SPEC §7's headers.
pub(crate) fn routes<S: ShimStore>() -> Router<HttpState<S>> {
    let authorize = get(authorize::authorize_get::<S>).post(authorize::authorize_post::<S>);
    Router::new()
        .route("/oauth/authorize", authorize.clone())
        .route("/oauth2/authorize", authorize.clone())
        .route("/api/v1/oauth2/authorize", authorize)
        .route("/oauth/login", post(authorize::login::<S>))
        .route("/oauth/consent", post(authorize::consent::<S>))
        .route(
            "/oauth/logout",
            get(logout::confirm::<S>).post(logout::log_out::<S>),
        )
        .route("/oauth/assets/style.css", get(render::style::<S>))
        .layer(axum::middleware::map_response(page_headers))
}

/// No page may be cached, framed, or leak its URL (which carries the
/// request's `state`) through `Referer`; no page runs script.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
