//! `POST /oauth/revoke` (RFC 7009): the form becomes a `Revoke` call; success is
//! an empty 200, unknown tokens included.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{HttpError, Outcome};
use super::form::read_form;
use super::metrics::RequestInfo;
use super::routes::HttpState;
use super::token::in_process;
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenService as _;
use crate::grpc::status::from_status;

pub(crate) async fn revoke(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match read_form(&headers, body) {
        Ok(form) => form,
        Err(response) => return response,
    };
    let credentials = form.client_credentials();
    let info = RequestInfo::new(None, &credentials);
    let result = async {
        let request = pb::RevokeRequest {
            client: Some(credentials?),
            token: form.take("token").unwrap_or_default(),
            token_type_hint: form.take("token_type_hint"),
        };
        let answer = state.service.revoke(in_process(request)).await;
        answer.map(|_| ()).map_err(|status| from_status(&status))
    }
    .await;
    let mut response = match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
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
