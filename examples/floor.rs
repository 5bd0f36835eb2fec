//! The floors of `bench/run.sh`: what this machine's HTTP and gRPC stacks do at
//! all. An axum handler that reads a form POST and answers a fixed token-sized
//! JSON, and tonic's health Check as a no-op unary RPC. Prints its addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use axum::routing::post;
use axum::serve::ListenerExt as _;
use axum::{Form, Router};
use tokio::net::TcpListener;

/// As long as an ES256 access token response.
const TOKEN_RESPONSE: &str = concat!(
    r#"{"access_token":"eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiIsImtpZCI6IkpuUmxUTTh1eUNNT2hCY1AifQ."#,
    r#"eyJpc3MiOiJodHRwOi8vbG9jYWxob3N0OjMwMzAiLCJzdWIiOiItalNmVklOMWJBRHlXVW5nd3FDNEF3IiwiYXVkIjoiaHR0cDovL2xvY2FsaG9zdDozMDMwIiwiZXhwIjoxNzk1MzAzMTU1LCJpYXQiOjE3OTUyOTk1NTUsIm5iZiI6MTc5NTI5OTU1NSwianRpIjoiSGh2U2ZPS1NnSmVxbldpcTItQVRwQSIsImNsaWVudF9pZCI6Ii1qU2ZWSU4xYkFEeVdVbmd3cUM0QXciLCJzY29wZSI6InJlYWQifQ."#,
    r#"qTtuhG6MLTeUu4pkM35Ai8qSqYRoP2I1KNDIr3gBb17n40q1CrkvVP2_lPMpTBPo7s6VdKRG8p-VRuzUC43izA","token_type":"Bearer","expires_in":3600,"scope":"read"}"#
);

async fn token(Form(form): Form<HashMap<String, String>>) -> impl axum::response::IntoResponse {
    let status = if form.contains_key("grant_type") {
        200
    } else {
        400
    };
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
        ],
        TOKEN_RESPONSE,
    )
}

#[tokio::main]
async fn main() {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("HTTP listening on {}", http.local_addr().unwrap());
    println!("gRPC listening on {}", grpc.local_addr().unwrap());
    let (_reporter, health) = tonic_health::server::health_reporter();
    let grpc = tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
        );
    let http = http.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
    let http = axum::serve(http, Router::new().route("/oauth/token", post(token)));
    let (grpc, http) = tokio::join!(grpc, http);
    grpc.unwrap();
    http.unwrap();
}
