//! The router: every HTTP path, its handler, and the layers around them.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::MAX_BODY_BYTES;
use super::metrics::{Metrics, observe};
use crate::config::Config;
use crate::grpc::token_service::TokenServiceImpl;
use crate::store::SeaStore;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) service: TokenServiceImpl<SeaStore>,
    pub(crate) store: SeaStore,
    pub(crate) issuer: String,
    /// How long a retired key stays in the JWKS: the longest a token can live.
    pub(crate) default_access_token_ttl: i64,
    /// JWKS `max-age`: a cached JWKS never misses a key that signs.
    pub(crate) jwks_max_age: i64,
    pub(crate) metrics: Metrics,
}

/// Builds the shim's router around the in-process gRPC service.
pub(crate) fn router(
    service: TokenServiceImpl<SeaStore>,
    store: SeaStore,
    metrics: Metrics,
    config: &Config,
) -> Router {
    let state = HttpState {
        service,
        store,
        issuer: config.policy.issuer.clone(),
        default_access_token_ttl: config.policy.access_token_ttl,
        jwks_max_age: config.key_publish_delay.max(1),
        metrics,
    };
    let token = post(super::token::token);
    Router::new()
        .route("/oauth/token", token.clone())
        .route("/oauth2/token", token.clone())
        .route("/api/v1/oauth2/token", token)
        .route("/oauth/introspect", post(super::introspect::introspect))
        .route("/oauth/revoke", post(super::revoke::revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(super::well_known::metadata),
        )
        .route("/.well-known/jwks.json", get(super::well_known::jwks))
        .route("/healthz", get(super::probes::healthz))
        .route("/readyz", get(super::probes::readyz))
        .route("/metrics", get(super::metrics::render))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(observe))
        .with_state(state)
}
