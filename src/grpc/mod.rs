//! The gRPC transport: the only implementation of the `TokenService` RPCs, its
//! error mapping, its codec and message limits, and health.

pub(crate) mod codec;
pub(crate) mod health;
pub(crate) mod limits;
pub mod pb;
pub(crate) mod status;
pub(crate) mod token_service;
pub(crate) mod transport;
