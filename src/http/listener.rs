//! The HTTP listener: hyper's HTTP/1 and HTTP/2 with their limits set, the
//! connection cap and idle deadline of `crate::connections`, and two checks
//! every request passes before the router: a declared body over
//! `MAX_BODY_BYTES` is refused unread, and the whole request has a deadline.
//!
//! hyper's header-read timeout runs from the moment a connection waits for a
//! request head, so it bounds both a slow head and the idle wait between
//! requests on a keep-alive connection.
//!
//! On a TLS listener each connection's handshake runs in that connection's own
//! task, under the handshake deadline, so the accept loop never waits on one;
//! every answer then carries `Strict-Transport-Security`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse as _, Response};
use http::{HeaderValue, Request, header};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Timeout;

use super::MAX_BODY_BYTES;
use super::error::HttpError;
use super::form::body_too_large;
use crate::config::ConnectionLimits;
use crate::connections::{Incoming as Connections, Slots};
use crate::oauth::error::OAuthError;
use crate::tls::Handshaker;

/// What answers over HTTPS tell browsers: use HTTPS for this host, for a year.
/// A year is the floor browsers' preload lists ask for, and long enough that
/// the header protects returning users between visits. No `includeSubDomains`:
/// oauthd speaks for its own host, not for the other services of its domain.
const STRICT_TRANSPORT_SECURITY: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// Serves `router` on the connections of `listener` until `stop` resolves,
/// then stops accepting and waits for the open connections to finish their
/// requests in flight and close. With `tls`, every connection speaks TLS.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    slots: Slots,
    router: Router,
    limits: &ConnectionLimits,
    tls: Option<Handshaker>,
    stop: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder(limits));
    let mut connections = Connections::new(listener, slots, limits.idle_timeout, "http");
    let (closing_tx, closing_rx) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = connections.accept() => accepted,
        };
        let handler = Handler {
            router: router.clone(),
            peer,
            request_timeout: limits.request_timeout,
            over_https: tls.is_some(),
        };
        let builder = Arc::clone(&builder);
        let mut closing = closing_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(handshaker) = tls else {
                return serve_connection(&builder, io, handler, closing).await;
            };
            tokio::select! {
                handshaken = handshaker.handshake(io) => {
                    if let Ok(io) = handshaken {
                        serve_connection(&builder, io, handler, closing).await;
                    }
                }
                // Draining: a connection without a request yet has none to finish.
                _ = closing.changed() => {}
            }
        });
    }
    // Closes the listening socket: new clients are refused by the kernel
    // rather than left waiting.
    drop(connections);
    drop(closing_rx);
    let _ = closing_tx.send(());
    closing_tx.closed().await;
}

/// Serves one connection's requests until it closes, or finishes those in
/// flight and closes it once `closing` changes.
async fn serve_connection<IO>(
    builder: &Builder<TokioExecutor>,
    io: IO,
    handler: Handler,
    mut closing: watch::Receiver<()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), handler);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = closing.changed() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

fn builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_timeout)
        .max_buf_size(limits.http_max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.http_max_header_bytes).unwrap_or(u32::MAX))
        .initial_stream_window_size(limits.http2_window_bytes)
        .initial_connection_window_size(limits.http2_window_bytes)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    builder
}

/// One connection's requests: the router, told the peer's address the way
/// `Router::into_make_service_with_connect_info` tells it.
#[derive(Clone)]
struct Handler {
    router: Router,
    peer: SocketAddr,
    request_timeout: Duration,
    /// Whether the connection is TLS, so answers carry HSTS.
    over_https: bool,
}

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        // Refused before anything polls the body, so hyper never answers
        // `Expect: 100-continue` with `100 Continue` for a body this size.
        if request.body().size_hint().lower() > MAX_BODY_BYTES as u64 {
            tracing::info!(method = %request.method(), status = 413, "request refused: declared body over 64 KiB");
            return Answer {
                pending: Pending::Ready {
                    ready: std::future::ready(Ok(body_too_large())),
                },
                over_https: self.over_https,
            };
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let routed = tower::Service::call(&mut self.router.clone(), request);
        Answer {
            pending: Pending::Routed {
                routed: tokio::time::timeout(self.request_timeout, routed),
            },
            over_https: self.over_https,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response to one request, with HSTS when it goes out over HTTPS.
    struct Answer {
        #[pin]
        pending: Pending,
        over_https: bool,
    }
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let over_https = *this.over_https;
        this.pending.poll(cx).map(|Ok(mut response)| {
            if over_https {
                response
                    .headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY);
            }
            Ok(response)
        })
    }
}

pin_project_lite::pin_project! {
    /// The response to one request: refused at once, or routed under the
    /// request deadline.
    #[project = PendingProjection]
    enum Pending {
        Ready { #[pin] ready: std::future::Ready<Result<Response, Infallible>> },
        Routed { #[pin] routed: Timeout<axum::routing::future::RouteFuture<Infallible>> },
    }
}

impl Future for Pending {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            PendingProjection::Ready { ready } => ready.poll(cx),
            PendingProjection::Routed { routed } => routed.poll(cx).map(|outcome| {
                Ok(match outcome {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_elapsed) => {
                        tracing::info!(status = 503, "request timed out");
                        timed_out()
                    }
                })
            }),
        }
    }
}

/// What a request that ran past `--request-timeout` gets. Its body may be
/// unread, in which case hyper closes the connection after this answer.
fn timed_out() -> Response {
    HttpError {
        error: OAuthError::TemporarilyUnavailable,
        tried_basic: false,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::config::{Config, Settings};

    /// Handlers read the peer's address as they would behind
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    #[tokio::test]
    async fn handlers_see_the_peer_address() {
        let limits = Config::load(&Settings::default()).unwrap().connections;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            serve(listener, Slots::new(4), router, &limits, None, async {
                let _ = stop_rx.await;
            })
            .await;
        });

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let local = stream.local_addr().unwrap();
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nHost: oauthd\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&local.to_string()), "{answer}");

        stop_tx.send(()).unwrap();
        server.await.unwrap();
    }
}
