//! TLS on the listeners (issue 16): rustls with the aws-lc-rs provider, TLS
//! 1.2 and 1.3 only, the pair each listener presents swapped in when its files
//! change (`reload.rs`), and handshakes bounded in time and run beside the
//! accept loop, never in it (`handshakes.rs`), so that a client that stalls in
//! its handshake holds up nobody else.
//!
//! Architecture invariant: no byte of TLS is written here; this module only
//! configures rustls and decides when to run it.

mod handshakes;
mod pair;
mod reload;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{TlsConfig, TlsFiles};
pub(crate) use handshakes::Handshakes;
use pair::PairBytes;
pub(crate) use pair::PairError;
use reload::{CurrentPair, Watcher};

/// Which protocols a listener offers in ALPN.
#[derive(Debug, Clone, Copy)]
enum Alpn {
    /// The HTTP shim: HTTP/2 preferred, HTTP/1.1 for the clients without it.
    Http,
    /// gRPC runs on HTTP/2 only.
    Grpc,
}

impl Alpn {
    fn protocols(self) -> Vec<Vec<u8>> {
        match self {
            Self::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Self::Grpc => vec![b"h2".to_vec()],
        }
    }
}

/// Runs the server side of TLS handshakes for one listener.
#[derive(Clone)]
pub(crate) struct Handshaker {
    acceptor: TlsAcceptor,
    /// A handshake that takes longer is abandoned and its connection closed.
    deadline: Duration,
    listener: &'static str,
}

impl Handshaker {
    /// The TLS session over `io`, or why there is none: the client spoke
    /// something else, gave up, or took longer than the deadline.
    pub(crate) async fn handshake<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let outcome = match tokio::time::timeout(self.deadline, self.acceptor.accept(io)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake took too long",
            )),
        };
        if let Err(err) = &outcome {
            // A plaintext client or a scanner on a TLS port is the client's
            // problem: counted, and logged only at debug.
            metrics::counter!("oauthd_tls_handshake_failures_total", "listener" => self.listener)
                .increment(1);
            tracing::debug!(listener = self.listener, error = %err, "TLS handshake failed");
        }
        outcome
    }
}

/// The TLS side of one listener: its handshakes, and the task that keeps its
/// certificate current.
pub(crate) struct ListenerTls {
    pub(crate) handshaker: Handshaker,
    watcher: Watcher,
}

impl ListenerTls {
    /// Starts following the files for changes, and shows the certificate's
    /// expiry in `/metrics`. Call it once the metrics recorder is installed.
    pub(crate) fn spawn_reloads(self) -> Handshaker {
        tokio::spawn(self.watcher.watch_forever());
        self.handshaker
    }
}

/// Each listener's TLS, `None` for a plaintext one.
pub(crate) struct ServerTls {
    pub(crate) http: Option<ListenerTls>,
    pub(crate) grpc: Option<ListenerTls>,
}

impl ServerTls {
    /// Reads and checks every configured pair, so that a bad one stops the
    /// start with its file's name.
    pub(crate) async fn load(
        config: &TlsConfig,
        handshake_deadline: Duration,
    ) -> Result<Self, PairError> {
        let listener = |files: &Option<TlsFiles>, name, alpn| {
            let files = files.clone();
            async move {
                match files {
                    Some(files) => Some(load(name, files, alpn, handshake_deadline).await),
                    None => None,
                }
                .transpose()
            }
        };
        Ok(Self {
            http: listener(&config.http, "http", Alpn::Http).await?,
            grpc: listener(&config.grpc, "grpc", Alpn::Grpc).await?,
        })
    }
}

async fn load(
    listener: &'static str,
    files: TlsFiles,
    alpn: Alpn,
    handshake_deadline: Duration,
) -> Result<ListenerTls, PairError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (read_files, read_provider) = (files.clone(), Arc::clone(&provider));
    let (loaded, contents) = tokio::task::spawn_blocking(move || {
        let bytes = PairBytes::read(&read_files)?;
        let loaded = pair::load(&read_files, &bytes, &read_provider)?;
        Ok::<_, PairError>((loaded, bytes.contents()))
    })
    .await
    .map_err(|_| PairError::Interrupted {
        path: files.cert.clone(),
    })??;
    let current = Arc::new(CurrentPair::new(loaded.certified));
    let config = server_config(Arc::clone(&provider), Arc::clone(&current), alpn)
        .map_err(PairError::Refused)?;
    tracing::info!(
        listener,
        cert = %files.cert.display(),
        not_after = loaded.not_after,
        "TLS on"
    );
    reload::warn_if_expired(listener, &files, loaded.not_after);
    Ok(ListenerTls {
        handshaker: Handshaker {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            deadline: handshake_deadline,
            listener,
        },
        watcher: Watcher {
            listener,
            files,
            provider,
            current,
            served: contents,
            not_after: loaded.not_after,
        },
    })
}

fn server_config(
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentPair>,
    alpn: Alpn,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = alpn.protocols();
    Ok(config)
}
