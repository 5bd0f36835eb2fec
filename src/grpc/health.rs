//! gRPC health (SPEC §6): `""` and `oauthd.v1.TokenService` are SERVING while
//! the database answers and NOT_SERVING while it does not.

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The service names whose status follows the database.
pub(crate) const HEALTH_SERVICES: [&str; 2] = ["", "oauthd.v1.TokenService"];

/// A service name that is SERVING for as long as the process serves, for
/// liveness probes: a database outage must make pods unready, never get them
/// restarted.
pub(crate) const LIVENESS_SERVICE: &str = "liveness";

/// Mirrors `available` onto the health reporter until the sender is dropped.
pub(crate) async fn follow_database(
    reporter: HealthReporter,
    mut available: watch::Receiver<bool>,
) {
    reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    loop {
        let status = if *available.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in HEALTH_SERVICES {
            reporter.set_service_status(service, status).await;
        }
        if available.changed().await.is_err() {
            return;
        }
    }
}
