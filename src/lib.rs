//! oauthd: an OAuth 2.0 authorization server packaged as a gRPC microservice.
//! See README.md's Architecture section for the map.

pub(crate) mod app;
pub mod cli;
pub mod clock;
pub mod config;
mod connections;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grpc;
pub mod http;
pub mod logs;
#[path = "../migrations/mod.rs"]
pub mod migrations;
pub mod oauth;
pub mod server;
pub mod store;
mod tls;
pub mod tokens;
