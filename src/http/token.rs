//! `POST /oauth/token` (also `/oauth2/token`, `/api/v1/oauth2/token`): the form
//! becomes an `IssueToken` call, its answer RFC 6749 §5.1 JSON.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{HttpError, Outcome, no_store};
use super::form::read_form;
use super::metrics::RequestInfo;
use super::routes::HttpState;
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenService as _;
use crate::grpc::status::from_status;
use crate::grpc::token_service::{ClientAddress, FromHttpShim};

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

/// A request for an RPC the shim makes in-process.
pub(crate) fn in_process<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(FromHttpShim);
    request
}

pub(crate) async fn token(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match read_form(&headers, body) {
        Ok(form) => form,
        Err(response) => return response,
    };
    let credentials = form.client_credentials();
    let grant_type = form.take("grant_type");
    let info = RequestInfo::new(grant_type.clone(), &credentials);
    let forwarded_for = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().ok());
    let client = state
        .service
        .trusted_proxies()
        .client_address(peer.ip(), forwarded_for);
    let result = async {
        let request = pb::IssueTokenRequest {
            client: Some(credentials?),
            grant_type: grant_type.unwrap_or_default(),
            scope: form.take("scope"),
            username: form.take("username"),
            password: form.take("password"),
            refresh_token: form.take("refresh_token"),
        };
        let mut request = in_process(request);
        request.extensions_mut().insert(ClientAddress(client));
        let answer = state.service.issue_token(request).await;
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| from_status(&status))
    }
    .await;
    let mut response = match result {
        Ok(issued) => {
            let mut response = Json(TokenBody {
                access_token: issued.access_token,
                token_type: issued.token_type,
                expires_in: issued.expires_in,
                refresh_token: issued.refresh_token,
                scope: issued.scope,
            })
            .into_response();
            no_store(&mut response);
            response.extensions_mut().insert(Outcome("success"));
            response
        }
        Err(error) => HttpError {
            error,
            tried_basic: form.tried_basic,
        }
        .into_response(),
    };
    response.extensions_mut().insert(info);
    response
}
