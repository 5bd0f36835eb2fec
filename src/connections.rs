//! What both listeners do to every connection before HTTP or gRPC sees it: a
//! cap on how many are open, an idle deadline, and Nagle's algorithm off.
//!
//! At the cap a new connection is accepted and closed at once, rather than
//! left in the kernel's queue: its client fails fast and can go to another
//! replica, and connections already open keep being served. Only the accept
//! loop refuses, so the cost is one `accept` and one `close` per refusal.
//!
//! The idle deadline closes a connection from which nothing has been read for
//! `idle_timeout`: a client that connects and never sends its first request or
//! its HTTP/2 preface, or one that falls silent and answers no keep-alive ping.
//! The clock is read once per successful read; the timer is registered once per
//! idle period, not per read, and moved forward lazily when it fires.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;

use crate::clock;

/// How long the accept loop pauses after an error that is not the client's,
/// such as running out of file descriptors, so it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Refusals at the cap are logged at most this often, with a count.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The open-connection slots of one listener.
#[derive(Clone)]
pub(crate) struct Slots {
    free: Arc<Semaphore>,
    cap: usize,
}

impl Slots {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(cap)),
            cap,
        }
    }

    /// How many connections hold a slot now.
    pub(crate) fn open(&self) -> usize {
        self.cap.saturating_sub(self.free.available_permits())
    }
}

/// The connections a listener accepts, each holding one of its slots until it
/// is dropped. Past the cap, connections are closed as they arrive.
pub(crate) struct Incoming {
    listener: TcpListener,
    slots: Slots,
    idle_timeout: Duration,
    /// Which listener, for the log and the refusal counter.
    name: &'static str,
    /// Set while pausing after an accept error.
    pause: Option<Pin<Box<Sleep>>>,
    refused_since_log: u64,
    last_refusal_log: Option<std::time::Instant>,
}

impl Incoming {
    pub(crate) fn new(
        listener: TcpListener,
        slots: Slots,
        idle_timeout: Duration,
        name: &'static str,
    ) -> Self {
        Self {
            listener,
            slots,
            idle_timeout,
            name,
            pause: None,
            refused_since_log: 0,
            last_refusal_log: None,
        }
    }

    /// The next connection under the cap, with its peer's address.
    pub(crate) fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<(Guarded, SocketAddr)> {
        loop {
            if let Some(pause) = &mut self.pause {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            match self.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((tcp, peer))) => {
                    let Ok(slot) = Arc::clone(&self.slots.free).try_acquire_owned() else {
                        drop(tcp);
                        self.refused();
                        continue;
                    };
                    // Small responses must leave at once: with Nagle's algorithm
                    // a response split over two writes waits for the client's
                    // delayed ACK, about 40 ms.
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::warn!(error = %err, "cannot set TCP_NODELAY");
                    }
                    return Poll::Ready((Guarded::new(tcp, slot, self.idle_timeout), peer));
                }
                // The client gave up before we accepted: nothing to do.
                Poll::Ready(Err(err)) if is_connection_error(&err) => {}
                Poll::Ready(Err(err)) => {
                    tracing::error!(listener = self.name, error = %err, "cannot accept a connection");
                    self.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                }
            }
        }
    }

    /// The next connection under the cap.
    pub(crate) async fn accept(&mut self) -> (Guarded, SocketAddr) {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    fn refused(&mut self) {
        metrics::counter!("oauthd_connections_refused_total", "listener" => self.name).increment(1);
        self.refused_since_log += 1;
        let now = clock::instant();
        if self
            .last_refusal_log
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL)
        {
            tracing::warn!(
                listener = self.name,
                cap = self.slots.cap,
                refused = self.refused_since_log,
                "connection cap reached: closing new connections"
            );
            self.refused_since_log = 0;
            self.last_refusal_log = Some(now);
        }
    }
}

/// The gRPC server takes its connections as a stream.
impl Stream for Incoming {
    type Item = io::Result<Guarded>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_accept(cx)
            .map(|(connection, _)| Some(Ok(connection)))
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection: holds its listener's slot until dropped, and fails
/// its reads and writes once nothing has been read for the idle timeout.
pub(crate) struct Guarded {
    tcp: TcpStream,
    idle_timeout: Duration,
    last_read: Instant,
    /// Fires at or before `last_read + idle_timeout`; moved on when it fires early.
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Guarded {
    fn new(tcp: TcpStream, slot: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        let now = Instant::from_std(clock::instant());
        Self {
            tcp,
            idle_timeout,
            last_read: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            _slot: slot,
        }
    }

    /// The TCP connection.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Ready with an error once the connection has been idle too long; called
    /// only when the socket is not ready, so a busy connection never gets here.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.deadline.as_mut().poll(cx));
            let due = self.last_read + self.idle_timeout;
            if due <= Instant::from_std(clock::instant()) {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_read = Instant::from_std(clock::instant());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.tcp).poll_write(cx, buf) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            done => done,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Raises the soft limit on open files to the hard limit, so that the
/// connection caps, not the default of 1024, bound the descriptors in use.
/// Returns the soft limit in force afterwards, if it is known.
pub(crate) fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else {
        return None; // unlimited
    };
    let Some(hard) = hard else {
        return Some(current);
    };
    if current >= hard {
        return Some(current);
    }
    let raised = rustix::process::Rlimit {
        current: Some(hard),
        maximum: Some(hard),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some(hard),
        Err(err) => {
            tracing::warn!(error = %err, "cannot raise the open-file limit");
            Some(current)
        }
    }
}
