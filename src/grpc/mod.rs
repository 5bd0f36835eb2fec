//! The gRPC transport: the only implementation of the `TokenService` RPCs, its
//! error mapping, its codec and message limits, health, and Envoy's `Check`.

pub(crate) mod codec;
pub(crate) mod ext_authz;
pub(crate) mod health;
pub(crate) mod limits;
pub mod pb;
pub(crate) mod status;
pub(crate) mod token_service;
pub(crate) mod transport;
