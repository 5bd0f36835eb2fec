//! What the three form endpoints (token, introspection, revocation) share:
//! the form's client credentials go into an in-process RPC, and its answer, or
//! its error, comes back as the HTTP response.

use std::future::Future;

use axum::response::{IntoResponse as _, Response};

use super::error::{HttpError, Outcome};
use super::form::FormRequest;
use super::metrics::RequestInfo;
use crate::grpc::pb;
use crate::grpc::status::from_status;
use crate::grpc::token_service::FromHttpShim;

/// A request for an RPC the shim makes in-process.
pub(crate) fn in_process<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(FromHttpShim);
    request
}

/// Calls `rpc` with the form's client credentials and renders its answer with
/// `render`, or its error as RFC 6749 §5.2 JSON (with `WWW-Authenticate` when
/// the client tried Basic). Client credentials the form cannot yield (Basic and
/// body together) are refused without a call. `grant_type` is for the log line.
pub(crate) async fn call_and_render<T, Call>(
    form: &FormRequest,
    grant_type: Option<String>,
    rpc: impl FnOnce(pb::ClientCredentials) -> Call,
    render: impl FnOnce(T) -> Response,
) -> Response
where
    Call: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let credentials = form.client_credentials();
    let info = RequestInfo::new(grant_type, &credentials);
    let result = match credentials {
        Ok(credentials) => rpc(credentials)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| from_status(&status)),
        Err(error) => Err(error),
    };
    let mut response = match result {
        Ok(answer) => {
            let mut response = render(answer);
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
