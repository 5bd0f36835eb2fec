//! The gRPC transport: the only implementation of the `TokenService` RPCs, its
//! error mapping, and health.

pub mod health;
pub mod pb;
pub mod status;
pub mod token_service;
pub(crate) mod transport;
