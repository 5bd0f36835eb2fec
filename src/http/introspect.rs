//! `POST /oauth/introspect` (RFC 7662): the form becomes an `Introspect` call.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::no_store;
use super::form::FormRequest;
use super::routes::{HttpState, ShimStore};
use super::shim::{call_and_render, in_process};
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenService as _;

/// RFC 7662 §2.2. An inactive token serialises as exactly `{"active":false}`.
#[derive(Serialize)]
struct IntrospectBody {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

impl From<pb::IntrospectResponse> for IntrospectBody {
    fn from(answer: pb::IntrospectResponse) -> Self {
        Self {
            active: answer.active,
            scope: answer.scope,
            client_id: answer.client_id,
            username: answer.username,
            token_type: answer.token_type,
            exp: answer.exp,
            iat: answer.iat,
            nbf: answer.nbf,
            sub: answer.sub,
            aud: answer.aud,
            iss: answer.iss,
            jti: answer.jti,
        }
    }
}

pub(crate) async fn introspect<S: ShimStore>(
    State(state): State<HttpState<S>>,
    form: FormRequest,
) -> Response {
    call_and_render(
        &form,
        None,
        |client| {
            let request = pb::IntrospectRequest {
                client: Some(client),
                token: form.take("token").unwrap_or_default(),
                token_type_hint: form.take("token_type_hint"),
            };
            state.service.introspect(in_process(request))
        },
        |answer| {
            let mut response = Json(IntrospectBody::from(answer)).into_response();
            no_store(&mut response);
            response
        },
    )
    .await
}
