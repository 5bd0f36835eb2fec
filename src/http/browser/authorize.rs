//! `/oauth/authorize` (`GET` and `POST`), and the login and consent forms that
//! carry its request on.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;

use super::cookies::{self, SESSION_COOKIE};
use super::params::{self, authorize_parameters, single};
use super::render::{self, PageContext, RedirectStatus};
use crate::clock;
use crate::http::routes::{HttpState, ShimStore};
use crate::oauth::authorize::{self as core_authorize, Decision, LoginOutcome};
use crate::oauth::login_throttle::LoginOrigin;
use crate::oauth::user_auth::LoginAttempt;
use crate::tokens::secret::Secret;

/// `GET /oauth/authorize`: the request is the query.
pub(crate) async fn authorize_get<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let pairs = params::pairs(uri.query().unwrap_or_default().as_bytes());
    answer(&state, &headers, &pairs, RedirectStatus::Found).await
}

/// `POST /oauth/authorize`: the request is the form body.
pub(crate) async fn authorize_post<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !params::is_form(&headers) {
        return render::not_a_form(&state);
    }
    let pairs = params::pairs(&body);
    answer(&state, &headers, &pairs, RedirectStatus::SeeOther).await
}

async fn answer<S: ShimStore>(
    state: &HttpState<S>,
    headers: &HeaderMap,
    pairs: &[(String, Option<String>)],
    redirect: RedirectStatus,
) -> Response {
    let params = authorize_parameters(pairs);
    let session = cookies::read(headers, SESSION_COOKIE);
    let outcome = core_authorize::authorize(
        state.service.core(),
        &params,
        session.as_deref(),
        clock::now(),
    )
    .await;
    PageContext {
        state,
        headers,
        params: &params,
        redirect,
    }
    .outcome(outcome)
}

/// `POST /oauth/login`: `username`, `password`, the CSRF token and the
/// request. A success sets a new session cookie and sends the browser back to
/// the request, which goes on to consent or to the client.
pub(crate) async fn login<S: ShimStore>(
    State(state): State<HttpState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = match render::checked_form(&state, &headers, &body) {
        Ok(pairs) => pairs,
        Err(refused) => return refused,
    };
    let params = authorize_parameters(&pairs);
    let username = single(&pairs, "username").unwrap_or_default();
    let attempt = LoginAttempt {
        login: username.to_owned(),
        password: Secret::new(single(&pairs, "password").unwrap_or_default()),
        origin: Some(LoginOrigin {
            address: client_address(&state, peer, &headers),
            at: clock::instant(),
        }),
    };
    let core = state.service.core();
    let page = PageContext {
        state: &state,
        headers: &headers,
        params: &params,
        redirect: RedirectStatus::SeeOther,
    };
    let previous = cookies::read(&headers, SESSION_COOKIE);
    match core_authorize::log_in(core, &params, &attempt, previous.as_deref(), clock::now()).await {
        LoginOutcome::Refused(outcome) => page.outcome(outcome),
        LoginOutcome::Failed(request, err) => page.login_page(&request, Some(&err), username),
        LoginOutcome::LoggedIn(session) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.after_login().entries())
                .finish();
            let next = format!("/oauth/authorize?{query}");
            let mut response = render::redirect_to(&next, RedirectStatus::SeeOther);
            let ttl = session.expires_at - clock::now();
            response.headers_mut().append(
                header::SET_COOKIE,
                render::cookie_policy(&state).session(&session.id, ttl),
            );
            response
        }
    }
}

/// `POST /oauth/consent`: `decision` (`allow` or `deny`), the CSRF token and
/// the request.
pub(crate) async fn consent<S: ShimStore>(
    State(state): State<HttpState<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = match render::checked_form(&state, &headers, &body) {
        Ok(pairs) => pairs,
        Err(refused) => return refused,
    };
    let decision = match single(&pairs, "decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return render::message_page(
                &state,
                axum::http::StatusCode::BAD_REQUEST,
                "The consent form must say allow or deny.",
            );
        }
    };
    let params = authorize_parameters(&pairs);
    let session = cookies::read(&headers, SESSION_COOKIE);
    let outcome = core_authorize::decide(
        state.service.core(),
        &params,
        session.as_deref(),
        decision,
        clock::now(),
    )
    .await;
    PageContext {
        state: &state,
        headers: &headers,
        params: &params,
        redirect: RedirectStatus::SeeOther,
    }
    .outcome(outcome)
}

/// The client's address for the login throttle: the peer, or the client a
/// trusted proxy names (`--trusted-proxies`), as for the password grant.
fn client_address<S>(
    state: &HttpState<S>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> std::net::IpAddr {
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().ok());
    state
        .service
        .trusted_proxies()
        .client_address(peer.ip(), forwarded_for)
}
