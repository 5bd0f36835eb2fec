//! Certificates replaced under a running listener.
//!
//! Every handshake asks `CurrentPair` for the pair to present, so a swap
//! reaches new connections at once while open ones keep the session they
//! negotiated. The files are polled rather than watched: Kubernetes updates a
//! mounted Secret by pointing a `..data` symlink at a new directory, which
//! file watches on the old targets never see, and a poll of two small files
//! every few seconds costs nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::time::MissedTickBehavior;

use super::pair::{self, Contents, LoadedPair, PairBytes, PairError, certificate_date};
use crate::config::TlsFiles;

/// How often the files are read again: a changed pair reaches new connections
/// within this, plus the time Kubernetes takes to update the volume.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The series of `/metrics` that shows when each listener's certificate expires.
const EXPIRY_METRIC: &str = "oauthd_tls_certificate_expiry_seconds";

/// The pair a listener presents now.
pub(crate) struct CurrentPair(ArcSwap<CertifiedKey>);

impl CurrentPair {
    pub(crate) fn new(certified: Arc<CertifiedKey>) -> Self {
        Self(ArcSwap::new(certified))
    }
}

impl ResolvesServerCert for CurrentPair {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

// rustls asks resolvers for `Debug`; the key has no business in any output.
impl fmt::Debug for CurrentPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentPair")
    }
}

/// One listener's files, and what was last made of them.
pub(crate) struct Watcher {
    pub(crate) listener: &'static str,
    pub(crate) files: TlsFiles,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) current: Arc<CurrentPair>,
    /// What the files held when the pair in use was read from them.
    pub(crate) served: Contents,
    pub(crate) not_after: i64,
}

/// What one poll of the files found.
enum Polled {
    Unchanged,
    Unreadable(PairError),
    Rejected(Contents, PairError),
    Loaded(Contents, LoadedPair),
}

impl Watcher {
    /// Shows the expiry in `/metrics`, then polls the files for as long as the
    /// process runs, swapping in each new pair that passes the checks. A pair
    /// that fails them is logged once and the old one stays in use, and so
    /// does a valid one when the new certificate has already expired.
    pub(crate) async fn watch_forever(mut self) {
        record_expiry(self.listener, self.not_after);
        let mut rejected: Option<Contents> = None;
        let mut last_unreadable: Option<String> = None;
        let mut every = tokio::time::interval(RELOAD_INTERVAL);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            match self.poll(rejected.clone()).await {
                Polled::Unchanged => last_unreadable = None,
                Polled::Unreadable(err) => {
                    let message = err.to_string();
                    if last_unreadable.as_ref() != Some(&message) {
                        tracing::warn!(listener = self.listener, error = %message,
                            "cannot read the new TLS certificate or key: still serving the old one");
                        last_unreadable = Some(message);
                    }
                }
                Polled::Rejected(contents, err) => {
                    last_unreadable = None;
                    tracing::warn!(listener = self.listener, error = %err,
                        "refusing the new TLS certificate and key: still serving the old ones");
                    rejected = Some(contents);
                }
                Polled::Loaded(contents, loaded) => {
                    last_unreadable = None;
                    rejected = None;
                    self.current.0.store(loaded.certified);
                    self.served = contents;
                    self.not_after = loaded.not_after;
                    record_expiry(self.listener, loaded.not_after);
                    warn_if_expired(self.listener, &self.files, loaded.not_after);
                    tracing::info!(
                        listener = self.listener,
                        not_after = loaded.not_after,
                        "TLS certificate reloaded: new connections get it"
                    );
                }
            }
        }
    }

    /// Reads the files off the runtime's threads and loads them if they
    /// changed since the pair in use, or since the last pair refused. A pair
    /// whose certificate has expired is refused while the one in use is valid.
    async fn poll(&self, rejected: Option<Contents>) -> Polled {
        let files = self.files.clone();
        let provider = Arc::clone(&self.provider);
        let served = self.served.clone();
        let serving_valid = !has_expired(self.not_after);
        let polled = tokio::task::spawn_blocking(move || {
            let bytes = match PairBytes::read(&files) {
                Ok(bytes) => bytes,
                Err(err) => return Polled::Unreadable(err),
            };
            let contents = bytes.contents();
            if contents == served || Some(&contents) == rejected.as_ref() {
                return Polled::Unchanged;
            }
            match pair::load(&files, &bytes, &provider) {
                Ok(loaded) if serving_valid && has_expired(loaded.not_after) => {
                    let err = PairError::Expired {
                        path: files.cert.clone(),
                        not_after: certificate_date(loaded.not_after),
                    };
                    Polled::Rejected(contents, err)
                }
                Ok(loaded) => Polled::Loaded(contents, loaded),
                Err(err) => Polled::Rejected(contents, err),
            }
        })
        .await;
        polled.unwrap_or(Polled::Unchanged)
    }
}

fn has_expired(not_after: i64) -> bool {
    not_after <= crate::clock::now()
}

/// An expired certificate is still served, at start or when it replaces one
/// that has expired too: refusing to listen would not bring a valid one, and
/// clients that do not check dates keep working. Clients that do are told
/// why in the log.
pub(crate) fn warn_if_expired(listener: &'static str, files: &TlsFiles, not_after: i64) {
    if has_expired(not_after) {
        tracing::warn!(
            listener,
            cert = %files.cert.display(),
            not_after = %certificate_date(not_after),
            "the TLS certificate has expired: clients that check it refuse to connect until it is replaced"
        );
    }
}

fn record_expiry(listener: &'static str, not_after: i64) {
    metrics::gauge!(EXPIRY_METRIC, "listener" => listener).set(not_after as f64);
}
