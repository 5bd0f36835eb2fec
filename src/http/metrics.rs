//! `GET /metrics` (Prometheus text format) and the middleware that counts,
//! times and logs every request: one line each, never a secret or token.

use std::fmt;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::error::Outcome;
use super::routes::{HttpState, ShimStore};
use crate::clock;
use crate::grpc::pb;
use crate::oauth::echo::UnverifiedClientId;
use crate::oauth::error::OAuthError;
use crate::oauth::model::GrantType;

/// The Prometheus recorder's handle.
#[derive(Clone)]
pub(crate) struct Metrics {
    handle: PrometheusHandle,
}

/// How often recorded latencies are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
];

impl Metrics {
    /// Installs the process-wide recorder once and returns its handle.
    pub(crate) fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("oauthd_http_request_duration_seconds".to_owned()),
                    &LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// Drains recorded latencies into their buckets every few seconds. The
    /// recorder keeps every raw sample until then, so without this a server
    /// nobody scrapes would grow by eight bytes a request, forever.
    pub(crate) async fn upkeep_forever(self) {
        let mut every = tokio::time::interval(UPKEEP_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.handle.run_upkeep();
        }
    }
}

/// Who asked for what, attached to a response by the handler for the log line.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestInfo {
    pub(crate) grant_type: Option<String>,
    pub(crate) client_id: Option<String>,
}

impl RequestInfo {
    /// What the log line says of a request with these credentials and grant.
    pub(crate) fn new(
        grant_type: Option<String>,
        credentials: &Result<pb::ClientCredentials, OAuthError>,
    ) -> Self {
        let client_id = credentials.as_ref().ok().map(|c| c.client_id.clone());
        Self {
            grant_type,
            client_id: client_id.filter(|id| !id.is_empty()),
        }
    }
}

/// A metric label for a grant type: only known values, so clients cannot blow up
/// the number of series.
fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        None => "none",
        Some(text) => text.parse::<GrantType>().map_or("other", GrantType::as_str),
    }
}

/// The `client_id` a log line shows: whole once the request succeeded, which
/// takes an authenticated client; otherwise a bounded form, since a failed
/// request's id may be anything, a secret pasted into the wrong field included.
enum LoggedClientId<'a> {
    None,
    Authenticated(&'a str),
    Unverified(UnverifiedClientId),
}

impl fmt::Display for LoggedClientId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("-"),
            Self::Authenticated(id) => f.write_str(id),
            Self::Unverified(id) => id.fmt(f),
        }
    }
}

/// Counts, times and logs a request. The log names the matched route, never
/// the raw path, which may carry anything (`unmatched` for no route).
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = clock::instant();
    let method = request.method().clone();
    let endpoint = request.extensions().get::<MatchedPath>().map_or_else(
        || "unmatched".to_owned(),
        |matched| matched.as_str().to_owned(),
    );
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let info = response
        .extensions()
        .get::<RequestInfo>()
        .cloned()
        .unwrap_or_default();
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .map_or(if status < 400 { "success" } else { "error" }, |o| o.0);
    let grant = grant_label(info.grant_type.as_deref());
    metrics::counter!("oauthd_http_requests_total",
        "endpoint" => endpoint.clone(), "grant_type" => grant, "outcome" => outcome)
    .increment(1);
    metrics::histogram!("oauthd_http_request_duration_seconds", "endpoint" => endpoint.clone())
        .record(elapsed.as_secs_f64());
    // Whole microseconds, so the line shows 0.25 rather than 0.25000000000000006.
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    let client_id = match info.client_id.as_deref() {
        None => LoggedClientId::None,
        Some(id) if outcome == "success" => LoggedClientId::Authenticated(id),
        Some(id) => LoggedClientId::Unverified(UnverifiedClientId::new(id)),
    };
    let route = endpoint.as_str();
    // Probes and metrics are polled; a proxy calls the check once for every
    // request to its API, and logging each at info cost a sixth of its rate
    // (bench/run.sh). oauthd_checks_total counts checks by outcome instead.
    if matches!(route, "/healthz" | "/readyz" | "/metrics" | "/oauth/check") {
        tracing::debug!(%method, route, status, latency_ms, "request");
    } else {
        tracing::info!(%method, route, grant_type = grant, %client_id, status, outcome, latency_ms, "request");
    }
    response
}

pub(crate) async fn render<S: ShimStore>(State(state): State<HttpState<S>>) -> Response {
    if let Some(pool) = state.store().pool_stats() {
        metrics::gauge!("oauthd_db_pool_connections").set(f64::from(pool.size));
        metrics::gauge!("oauthd_db_pool_idle_connections").set(pool.idle as f64);
    }
    let available = state.store().database_available();
    metrics::gauge!("oauthd_db_available").set(if available { 1.0 } else { 0.0 });
    let mut response = state.metrics.handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
