//! TLS connections as a stream, for a server (tonic's) that takes its
//! connections from one: each accepted connection's handshake runs in a task
//! of its own, and the stream yields the connections whose handshake is done,
//! in the order they finish. Polling the stream never waits on a handshake, so
//! a client that stalls in one delays no other client's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;

use super::Handshaker;

/// Connections accepted in one poll at most, so that a flood of new ones does
/// not keep finished handshakes from being handed on.
const ACCEPTS_PER_POLL: usize = 64;

/// The connections of `incoming`, once their handshakes are done; those that
/// fail theirs are closed and left out.
pub(crate) struct Handshakes<S, IO> {
    incoming: Pin<Box<S>>,
    handshaker: Handshaker,
    pending: JoinSet<io::Result<TlsStream<IO>>>,
    incoming_ended: bool,
}

impl<S, IO> Handshakes<S, IO> {
    pub(crate) fn new(incoming: S, handshaker: Handshaker) -> Self {
        Self {
            incoming: Box::pin(incoming),
            handshaker,
            pending: JoinSet::new(),
            incoming_ended: false,
        }
    }
}

impl<S, IO> Stream for Handshakes<S, IO>
where
    S: Stream<Item = io::Result<IO>>,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Item = io::Result<TlsStream<IO>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is `Unpin`: the incoming stream is boxed.
        let this = self.get_mut();
        let mut accepted = 0;
        while !this.incoming_ended {
            if accepted == ACCEPTS_PER_POLL {
                // More may be waiting: come back after handing on what is done.
                cx.waker().wake_by_ref();
                break;
            }
            match this.incoming.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(io))) => {
                    accepted += 1;
                    let handshaker = this.handshaker.clone();
                    this.pending
                        .spawn(async move { handshaker.handshake(io).await });
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => this.incoming_ended = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.pending.poll_join_next(cx) {
                Poll::Ready(Some(Ok(Ok(tls)))) => return Poll::Ready(Some(Ok(tls))),
                // Failed handshakes were counted and logged by the handshaker;
                // a panicked one has nothing to hand on either.
                Poll::Ready(Some(Ok(Err(_)) | Err(_))) => {}
                Poll::Ready(None) if this.incoming_ended => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}
