//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/jwks.json` (RFC 7517).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::routes::{HttpState, ShimStore};
use crate::clock;
use crate::oauth::model::GrantType;
use crate::oauth::pkce;

pub(crate) async fn metadata<S: ShimStore>(State(state): State<HttpState<S>>) -> Json<Value> {
    let issuer = &state.settings.issuer;
    let grant_types: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    let algs: Vec<&str> = state.store().key_ring().published_algorithms();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "code_challenge_methods_supported": [pkce::S256],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": state.store().known_scopes(),
        "access_token_signing_alg_values_supported": algs,
    }))
}

pub(crate) async fn jwks<S: ShimStore>(State(state): State<HttpState<S>>) -> Response {
    let retention = state
        .store()
        .longest_access_token_ttl(state.settings.default_access_token_ttl);
    let set = state.store().key_ring().jwks(clock::now(), retention);
    let mut response = Json(set).into_response();
    // A cached copy is never older than the time a new key is published before
    // it signs, so a verifier with a cached JWKS always knows the signing key.
    let cache = format!("public, max-age={}", state.settings.jwks_max_age);
    if let Ok(value) = HeaderValue::from_str(&cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
