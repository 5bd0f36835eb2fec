//! `POST /oauth/token` (also `/oauth2/token`, `/api/v1/oauth2/token`): the form
//! becomes an `IssueToken` call, its answer RFC 6749 §5.1 JSON.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::no_store;
use super::form::FormRequest;
use super::routes::{HttpState, ShimStore};
use super::shim::{call_and_render, in_process};
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenService as _;
use crate::grpc::token_service::ClientAddress;

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: String,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

pub(crate) async fn token<S: ShimStore>(
    State(state): State<HttpState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: FormRequest,
) -> Response {
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().ok());
    let client_address = state
        .service
        .trusted_proxies()
        .client_address(peer.ip(), forwarded_for);
    let grant_type = form.take("grant_type");
    call_and_render(
        &form,
        grant_type.clone(),
        |client| {
            let mut request = in_process(pb::IssueTokenRequest {
                client: Some(client),
                grant_type: grant_type.unwrap_or_default(),
                scope: form.take("scope"),
                username: form.take("username"),
                password: form.take("password"),
                refresh_token: form.take("refresh_token"),
                code: form.take("code"),
                redirect_uri: form.take("redirect_uri"),
                code_verifier: form.take("code_verifier"),
            });
            request
                .extensions_mut()
                .insert(ClientAddress(client_address));
            state.service.issue_token(request)
        },
        |issued| {
            let mut response = Json(TokenBody {
                access_token: issued.access_token,
                token_type: issued.token_type,
                expires_in: issued.expires_in,
                refresh_token: issued.refresh_token,
                scope: issued.scope,
            })
            .into_response();
            no_store(&mut response);
            response
        },
    )
    .await
}
