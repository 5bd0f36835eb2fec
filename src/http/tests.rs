//! The whole shim, driven in-process over the in-memory store: the router
//! `server.rs` serves, called with `oneshot` (no socket, no database).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use super::metrics::Metrics;
use super::routes::{ShimSettings, ShimStore, router};
use crate::grpc::token_service::TokenServiceImpl;
use crate::oauth::model::{Client, GrantType, PkceRule};
use crate::oauth::scope::ScopeSet;
use crate::oauth::testing::{MemoryStore, test_core_with_keys};
use crate::oauth::{Core, TokenFormat};
use crate::store::PoolStats;
use crate::tokens::keys::{SigningAlg, generate};
use crate::tokens::secret::hash_secret;

impl ShimStore for MemoryStore {
    fn pool_stats(&self) -> Option<PoolStats> {
        None
    }
}

/// An `ocs_` secret of the SPEC §5 format (refused before any lookup otherwise).
const SECRET: &str = "ocs_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg33TNI9";

fn shim() -> (axum::Router, Arc<Core<MemoryStore>>) {
    // The service reads the real clock, so the key signs from now on.
    let now = crate::clock::now();
    let key = generate(SigningAlg::Es256, now - 10, now - 10).unwrap();
    let core = Arc::new(test_core_with_keys(
        TokenFormat::Jwt,
        SigningAlg::Es256,
        &[key],
    ));
    core.store.put_client(Client {
        id: "svc".into(),
        name: "svc".into(),
        secret_hash: Some(hash_secret(SECRET)),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("read write").unwrap(),
        access_token_ttl: None,
        enabled: true,
        redirect_uris: Vec::new(),
        skip_consent: false,
        pkce: PkceRule::Required,
    });
    let settings = ShimSettings {
        issuer: core.policy.issuer.clone(),
        default_access_token_ttl: 3600,
        jwks_max_age: 5,
        pages: Arc::new(super::browser::Pages::load(None).unwrap()),
    };
    let service = TokenServiceImpl::new(Arc::clone(&core));
    (router(service, Metrics::install(), settings), core)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Response<Body>) {
    let mut request = request;
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    (response.status(), response)
}

fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn json(response: Response<Body>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn token_introspection_and_revocation_round_trip_in_process() {
    let (app, _) = shim();
    let credentials = format!("client_id=svc&client_secret={SECRET}");
    let (status, response) = send(
        &app,
        form(
            "/oauth/token",
            &format!("grant_type=client_credentials&{credentials}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let introspect = format!("token={token}&{credentials}");
    let (status, response) = send(&app, form("/oauth/introspect", &introspect)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(response).await["active"], true);

    let (status, _) = send(&app, form("/oauth/revoke", &introspect)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, response) = send(&app, form("/oauth/introspect", &introspect)).await;
    assert_eq!(json(response).await, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn errors_keep_the_rfc_6749_shape_in_process() {
    let (app, _) = shim();
    let (status, response) = send(
        &app,
        form(
            "/oauth/token",
            "grant_type=client_credentials&client_id=svc&client_secret=no",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "Bad client credentials");

    let (status, response) = send(&app, form("/oauth/token", "scope=read")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(response).await["error_description"],
        "Missing required parameter: grant_type"
    );
}

#[tokio::test]
async fn probes_metadata_and_jwks_read_the_core_traits() {
    let (app, core) = shim();
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let (status, _) = send(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, response) = send(&app, get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(status, StatusCode::OK);
    let metadata = json(response).await;
    assert_eq!(metadata["issuer"], core.policy.issuer);
    assert_eq!(
        metadata["scopes_supported"],
        serde_json::json!(["read", "write"])
    );
    assert_eq!(
        metadata["access_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    let (status, response) = send(&app, get("/.well-known/jwks.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(response).await["keys"].as_array().unwrap().len(), 1);
    let (status, _) = send(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);

    core.store.set_down(true);
    let (status, _) = send(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, response) = send(
        &app,
        form(
            "/oauth/token",
            &format!("grant_type=client_credentials&client_id=svc&client_secret={SECRET}"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(response).await["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_in_process() {
    let (app, _) = shim();
    let body = format!("grant_type=client_credentials&pad={}", "x".repeat(70_000));
    let (status, _) = send(&app, form("/oauth/token", &body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}
