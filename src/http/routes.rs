//! The router: every HTTP path, its handler, and the layers around them.
//!
//! It is built over the core's storage traits, not over the sea-orm store, so
//! the whole shim can run over the in-memory store in tests (`http/tests.rs`).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};

use std::sync::Arc;

use super::MAX_BODY_BYTES;
use super::browser::{self, Pages};
use super::metrics::{Metrics, observe};
use crate::config::Config;
use crate::grpc::token_service::TokenServiceImpl;
use crate::oauth::storage::{ClientCatalog, Stores};
use crate::store::{PoolStats, SeaStore};

/// What the shim reads beyond the RPCs: the core's traits for probes, metadata
/// and the JWKS, and connection-pool figures for `/metrics`.
pub(crate) trait ShimStore: Stores + ClientCatalog {
    /// Open and idle connections, when the store has a pool.
    fn pool_stats(&self) -> Option<PoolStats>;
}

impl ShimStore for SeaStore {
    fn pool_stats(&self) -> Option<PoolStats> {
        Some(SeaStore::pool_stats(self))
    }
}

/// The settings the shim's own endpoints publish.
#[derive(Clone)]
pub(crate) struct ShimSettings {
    /// The issuer, the base of every URL in the metadata.
    pub(crate) issuer: String,
    /// How long a retired key stays in the JWKS: the longest a token can live.
    pub(crate) default_access_token_ttl: i64,
    /// JWKS `max-age`: a cached JWKS never misses a key that signs.
    pub(crate) jwks_max_age: i64,
    /// The browser pages (SPEC §7), built in or from `--template-dir`.
    pub(crate) pages: Arc<Pages>,
}

impl ShimSettings {
    /// The settings as the configuration gives them; fails when a template
    /// of `--template-dir` cannot be read or compiled.
    pub(crate) fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            issuer: config.policy.issuer.clone(),
            default_access_token_ttl: config.policy.access_token_ttl,
            jwks_max_age: config.key_publish_delay.max(1),
            pages: Arc::new(Pages::load(config.template_dir.as_deref())?),
        })
    }
}

/// What the handlers share.
pub(crate) struct HttpState<S> {
    pub(crate) service: TokenServiceImpl<S>,
    pub(crate) settings: ShimSettings,
    pub(crate) metrics: Metrics,
}

impl<S> HttpState<S> {
    /// The store, through the core the service runs on.
    pub(crate) fn store(&self) -> &S {
        &self.service.core().store
    }
}

impl<S> Clone for HttpState<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Builds the shim's router around the in-process gRPC service.
pub(crate) fn router<S: ShimStore>(
    service: TokenServiceImpl<S>,
    metrics: Metrics,
    settings: ShimSettings,
) -> Router {
    let state = HttpState {
        service,
        settings,
        metrics,
    };
    let token = post(super::token::token::<S>);
    Router::new()
        .route("/oauth/token", token.clone())
        .route("/oauth2/token", token.clone())
        .route("/api/v1/oauth2/token", token)
        .route(
            "/oauth/introspect",
            post(super::introspect::introspect::<S>),
        )
        .route("/oauth/revoke", post(super::revoke::revoke::<S>))
        .route("/oauth/check", any(super::check::check_request::<S>))
        .route(
            "/.well-known/oauth-authorization-server",
            get(super::well_known::metadata::<S>),
        )
        .route("/.well-known/jwks.json", get(super::well_known::jwks::<S>))
        .route("/healthz", get(super::probes::healthz))
        .route("/readyz", get(super::probes::readyz::<S>))
        .route("/metrics", get(super::metrics::render::<S>))
        .merge(browser::routes::<S>())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(observe))
        .with_state(state)
}
