//! `POST /oauth/revoke` (RFC 7009): the form becomes a `Revoke` call; success is
//! an empty 200, unknown tokens included.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::form::FormRequest;
use super::routes::{HttpState, ShimStore};
use super::shim::{call_and_render, in_process};
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenService as _;

pub(crate) async fn revoke<S: ShimStore>(
    State(state): State<HttpState<S>>,
    form: FormRequest,
) -> Response {
    call_and_render(
        &form,
        None,
        |client| {
            let request = pb::RevokeRequest {
                client: Some(client),
                token: form.take("token").unwrap_or_default(),
                token_type_hint: form.take("token_type_hint"),
            };
            state.service.revoke(in_process(request))
        },
        |_| StatusCode::OK.into_response(),
    )
    .await
}
