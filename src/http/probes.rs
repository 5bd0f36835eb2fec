//! Kubernetes probes. `/healthz` answers while the process serves, whatever the
//! database does, so a database outage never gets pods restarted; `/readyz`
//! answers 200 only while the database does.

use axum::extract::State;
use axum::http::StatusCode;

use super::routes::{HttpState, ShimStore};

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz<S: ShimStore>(
    State(state): State<HttpState<S>>,
) -> (StatusCode, &'static str) {
    if state.store().database_available() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
