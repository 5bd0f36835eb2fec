//! The only code that reads the clock. Everything else takes the time as a
//! parameter, which keeps the protocol rules testable (clippy's
//! `disallowed-methods` enforces this).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::oauth::model::UnixTime;

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A monotonic instant, for rate limits and latency measurements.
#[allow(clippy::disallowed_methods)]
pub fn instant() -> std::time::Instant {
    std::time::Instant::now()
}
