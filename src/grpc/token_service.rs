//! `oauthd.v1.TokenService`: decode the request, call the core, encode the answer.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::pb;
use super::pb::token_service_server::TokenService;
use super::status::to_status;
use crate::clock;
use crate::oauth::Core;
use crate::oauth::client_address::TrustedProxies;
use crate::oauth::client_auth::ClientCredentials;
use crate::oauth::echo::UnverifiedClientId;
use crate::oauth::error::OAuthError;
use crate::oauth::grants::{
    GrantParameters, GrantRequest, IssuedTokens, TokenRequest, issue_token,
};
use crate::oauth::introspect::{Introspection, introspect};
use crate::oauth::login_throttle::LoginOrigin;
use crate::oauth::model::GrantType;
use crate::oauth::revoke::revoke;
use crate::oauth::storage::Stores;
use crate::tokens::secret::Secret;

/// Marks a request the HTTP shim makes in-process; the shim logs those itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FromHttpShim;

/// The client's address as the HTTP shim resolved it (peer, or `X-Forwarded-For`
/// from a trusted proxy), for the requests it makes in-process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub IpAddr);

/// The service: the core in an `Arc`, shared by the gRPC server and the shim.
pub(crate) struct TokenServiceImpl<S> {
    core: Arc<Core<S>>,
    trusted_proxies: TrustedProxies,
}

impl<S> TokenServiceImpl<S> {
    /// Serves `core`, trusting no proxy.
    pub(crate) fn new(core: Arc<Core<S>>) -> Self {
        Self {
            core,
            trusted_proxies: TrustedProxies::default(),
        }
    }

    /// Believes `x-forwarded-for` from these peers (`--trusted-proxies`).
    #[must_use]
    pub(crate) fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The core this service runs on.
    pub(crate) fn core(&self) -> &Core<S> {
        &self.core
    }

    /// The proxies whose `X-Forwarded-For` is believed; the shim resolves its
    /// clients' addresses with the same list.
    pub(crate) fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// Where a call comes from: what the shim resolved, or the TCP peer (or the
    /// client a trusted proxy names in `x-forwarded-for`).
    fn client_address<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        if let Some(ClientAddress(address)) = request.extensions().get::<ClientAddress>() {
            return Some(*address);
        }
        let peer = request.remote_addr()?.ip();
        let forwarded_for = request
            .metadata()
            .get_all("x-forwarded-for")
            .iter()
            .map(|value| value.to_str().ok());
        Some(self.trusted_proxies.client_address(peer, forwarded_for))
    }
}

impl<S> Clone for TokenServiceImpl<S> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

fn credentials(client: Option<pb::ClientCredentials>) -> ClientCredentials {
    let client = client.unwrap_or_default();
    ClientCredentials {
        client_id: client.client_id,
        client_secret: client.client_secret.map(Secret::new),
    }
}

fn token_response(issued: IssuedTokens) -> pb::TokenResponse {
    pb::TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        scope: issued.scope.to_string(),
    }
}

fn introspect_response(answer: Introspection) -> pb::IntrospectResponse {
    match answer {
        Introspection::Inactive => pb::IntrospectResponse::default(),
        Introspection::Active(token) => pb::IntrospectResponse {
            active: true,
            scope: Some(token.scope),
            client_id: Some(token.client_id),
            username: token.username,
            token_type: Some(token.token_type.to_owned()),
            exp: Some(token.exp),
            iat: Some(token.iat),
            nbf: token.nbf,
            sub: Some(token.sub),
            aud: token.aud,
            iss: token.iss,
            jti: token.jti,
        },
    }
}

/// The longest any call may take. A database that stops answering (a network
/// partition does not even reset connections) would otherwise hold requests
/// forever; past the deadline the caller is told to retry later, and work queued
/// behind a burst of password checks is shed the same way.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

async fn within_deadline<T>(
    call: impl Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    tokio::time::timeout(REQUEST_DEADLINE, call)
        .await
        .unwrap_or(Err(OAuthError::TemporarilyUnavailable))
}

/// Turns the core's result into the RPC's, logging once at this edge: one line per
/// failed call (not for the shim's calls, which the shim logs), and the cause of
/// an internal error, which the caller never sees. A failed call may not have
/// authenticated its client, so its `client_id` is logged in a bounded form only:
/// a secret pasted into that field must not reach the log.
fn finish<T, R>(
    rpc: &'static str,
    client_id: UnverifiedClientId,
    from_shim: bool,
    result: Result<T, OAuthError>,
    encode: impl FnOnce(T) -> R,
) -> Result<Response<R>, Status> {
    match result {
        Ok(value) => Ok(Response::new(encode(value))),
        Err(err) => {
            if let OAuthError::Internal(cause) = &err {
                tracing::error!(rpc, %client_id, cause = %cause, "internal error");
            } else if !from_shim {
                tracing::info!(rpc, %client_id, error = err.code(), "request refused");
            }
            Err(to_status(&err))
        }
    }
}

#[tonic::async_trait]
impl<S: Stores> TokenService for TokenServiceImpl<S> {
    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let from_shim = request.extensions().get::<FromHttpShim>().is_some();
        let origin = self.client_address(&request).map(|address| LoginOrigin {
            address,
            at: clock::instant(),
        });
        let req = request.into_inner();
        let token_request = TokenRequest {
            client: credentials(req.client),
            grant: GrantRequest::parse(GrantParameters {
                grant_type: req.grant_type,
                scope: req.scope,
                username: req.username,
                password: req.password.map(Secret::new),
                refresh_token: req.refresh_token.map(Secret::new),
                code: req.code.map(Secret::new),
                redirect_uri: req.redirect_uri,
                code_verifier: req.code_verifier.map(Secret::new),
            }),
            origin,
        };
        let client_id = UnverifiedClientId::new(&token_request.client.client_id);
        let result = within_deadline(issue_token(&self.core, token_request, clock::now())).await;
        finish("IssueToken", client_id, from_shim, result, token_response)
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        let from_shim = request.extensions().get::<FromHttpShim>().is_some();
        let req = request.into_inner();
        let token_request = TokenRequest {
            client: credentials(req.client),
            grant: GrantRequest::parse(GrantParameters {
                grant_type: GrantType::RefreshToken.as_str().to_owned(),
                scope: req.scope,
                refresh_token: Some(Secret::new(req.refresh_token)),
                ..GrantParameters::default()
            }),
            origin: None,
        };
        let client_id = UnverifiedClientId::new(&token_request.client.client_id);
        let result = within_deadline(issue_token(&self.core, token_request, clock::now())).await;
        finish("RefreshToken", client_id, from_shim, result, token_response)
    }

    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        let from_shim = request.extensions().get::<FromHttpShim>().is_some();
        let req = request.into_inner();
        let caller = credentials(req.client);
        let hint = req.token_type_hint.as_deref();
        let result = within_deadline(introspect(
            &self.core,
            &caller,
            &req.token,
            hint,
            clock::now(),
        ))
        .await;
        finish(
            "Introspect",
            UnverifiedClientId::new(&caller.client_id),
            from_shim,
            result,
            introspect_response,
        )
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let from_shim = request.extensions().get::<FromHttpShim>().is_some();
        let req = request.into_inner();
        let caller = credentials(req.client);
        let hint = req.token_type_hint.as_deref();
        let result =
            within_deadline(revoke(&self.core, &caller, &req.token, hint, clock::now())).await;
        let client_id = UnverifiedClientId::new(&caller.client_id);
        finish("Revoke", client_id, from_shim, result, |()| {
            pb::RevokeResponse {}
        })
    }
}
