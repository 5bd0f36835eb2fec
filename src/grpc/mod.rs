//! The gRPC transport: the only implementation of the `TokenService` RPCs, its
//! error mapping, its codec and message limits, and health.

pub mod codec;
pub mod health;
pub mod limits;
pub mod pb;
pub mod status;
pub mod token_service;
pub(crate) mod transport;
