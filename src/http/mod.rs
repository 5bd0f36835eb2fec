//! The HTTP shim: RFC 6749's form contract and its companions, translated into
//! the `TokenService` RPCs called in-process. Translation only: no rule about
//! who gets a token is decided here.

mod browser;
mod check;
pub(crate) mod error;
mod form;
mod introspect;
mod listener;
mod metrics;
mod probes;
mod revoke;
mod routes;
mod shim;
mod token;
mod well_known;

#[cfg(test)]
mod tests;

pub use form::FormRequest;
pub(crate) use listener::serve;
pub(crate) use metrics::Metrics;
pub(crate) use routes::{ShimSettings, router};

/// The largest request body read (SPEC §4); anything longer gets 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
