//! The gRPC server's connections, presented so that a token response leaves in
//! one write.
//!
//! h2 copies a DATA payload into its write buffer only below a threshold: 256
//! bytes on a socket that takes vectored writes, 1024 on one that does not.
//! A larger payload is written by reference, and the frame after it, the
//! trailers that end every gRPC response, waits for the next write. A signed
//! access token is 500 to 900 bytes, so each token response went out in two
//! writes: two system calls here, two segments and two wake-ups at the client.
//! A socket that declines vectored writes raises the threshold to 1024 bytes,
//! and the whole response goes out at once.
//!
//! Underneath, each connection is a `crate::connections::Guarded`: it holds a
//! slot of the listener's cap and is closed when idle too long. On a TLS
//! listener the TLS session sits between the two, and the same holds: rustls
//! seals each write it is given as it comes, so one write in is one out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::connections::{Guarded, Incoming, Slots};
use crate::tls::{Handshaker, Handshakes};

/// A connection without vectored writes; everything else passes through.
pub(crate) struct PlainWrites<T>(T);

impl<T: AsyncRead + Unpin> AsyncRead for PlainWrites<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

// `poll_write_vectored` and `is_write_vectored` keep their defaults: one buffer
// at a time, and "not vectored".
impl<T: AsyncWrite + Unpin> AsyncWrite for PlainWrites<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Connected for PlainWrites<Guarded> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.tcp().connect_info()
    }
}

// The peer's address, which the login throttle keys on, is the TCP peer's.
impl Connected for PlainWrites<TlsStream<Guarded>> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.tcp().connect_info()
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off, at most
/// as many at once as `slots` has, each closed after `idle_timeout` of silence.
/// `name` labels the listener in logs and metrics.
pub(crate) fn incoming(
    listener: TcpListener,
    slots: Slots,
    idle_timeout: std::time::Duration,
    name: &'static str,
) -> impl Stream<Item = io::Result<PlainWrites<Guarded>>> {
    Incoming::new(listener, slots, idle_timeout, name).map(|accepted| accepted.map(PlainWrites))
}

/// The same connections as `incoming`, each handed on once its TLS handshake
/// is done; the handshake holds the connection's slot and runs under its idle
/// deadline.
pub(crate) fn tls_incoming(
    listener: TcpListener,
    slots: Slots,
    idle_timeout: std::time::Duration,
    handshaker: Handshaker,
) -> impl Stream<Item = io::Result<PlainWrites<TlsStream<Guarded>>>> {
    let accepted = Incoming::new(listener, slots, idle_timeout, "grpc");
    Handshakes::new(accepted, handshaker).map(|handshaken| handshaken.map(PlainWrites))
}
