//! A certificate chain and its private key, read from their PEM files and
//! checked against each other before anything serves with them.
//!
//! Errors name the file and what is wrong with it, never the key's contents:
//! a PEM parser's own message may quote the line it choked on, so a key file's
//! parse errors are reported without it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;
use rustls::InconsistentKeys;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;

/// Why a pair cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PairError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {path}: {source}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The certificate file holds no usable certificate.
    #[error("no PEM certificate in {path}{detail}")]
    NoCertificate { path: PathBuf, detail: String },
    /// The key file holds no usable private key.
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {path}")]
    NoKey { path: PathBuf },
    /// The key is of a kind or shape the TLS library cannot sign with.
    #[error("the TLS private key in {path} cannot be used: {reason}")]
    UnusableKey { path: PathBuf, reason: String },
    /// The key is not the one the certificate certifies.
    #[error("the TLS private key {key} does not match the certificate {cert}")]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// The task reading the files ended before it finished.
    #[error("reading the TLS files {path} stopped before it finished")]
    Interrupted { path: PathBuf },
    /// rustls refused the configuration built around the pair.
    #[error("the TLS configuration is refused: {0}")]
    Refused(rustls::Error),
    /// The server's own certificate is not valid X.509.
    #[error("the TLS certificate in {path} cannot be parsed: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    /// A renewal whose certificate has already expired, while the one in use
    /// has not.
    #[error("the TLS certificate in {path} expired on {not_after}")]
    Expired { path: PathBuf, not_after: String },
}

/// What the two files held when last read: a digest, so that a change is
/// seen without keeping a second copy of the key around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contents(Vec<u8>);

/// The raw bytes of both files.
pub(crate) struct PairBytes {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl PairBytes {
    /// Reads both files. Blocking: call it off the runtime's threads.
    pub(crate) fn read(files: &TlsFiles) -> Result<Self, PairError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| PairError::Unreadable {
                what,
                path: path.to_owned(),
                source,
            })
        };
        Ok(Self {
            cert: read("certificate", &files.cert)?,
            key: read("private key", &files.key)?,
        })
    }

    /// A digest of both files, to compare with the last read.
    pub(crate) fn contents(&self) -> Contents {
        let mut context = digest::Context::new(&digest::SHA256);
        for part in [&self.cert, &self.key] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        Contents(context.finish().as_ref().to_vec())
    }
}

/// A pair ready to serve, and when its certificate stops being valid.
#[derive(Debug, Clone)]
pub(crate) struct LoadedPair {
    pub(crate) certified: Arc<CertifiedKey>,
    /// The server certificate's notAfter, in Unix seconds.
    pub(crate) not_after: i64,
}

/// Parses and checks a pair read from `files`.
pub(crate) fn load(
    files: &TlsFiles,
    bytes: &PairBytes,
    provider: &CryptoProvider,
) -> Result<LoadedPair, PairError> {
    let chain = CertificateDer::pem_slice_iter(&bytes.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| PairError::NoCertificate {
            path: files.cert.clone(),
            detail: format!(": {err}"),
        })?;
    let Some(server_certificate) = chain.first() else {
        return Err(PairError::NoCertificate {
            path: files.cert.clone(),
            detail: String::new(),
        });
    };
    let not_after = not_after(server_certificate).map_err(|reason| PairError::BadCertificate {
        path: files.cert.clone(),
        reason,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&bytes.key).map_err(|_| PairError::NoKey {
        path: files.key.clone(),
    })?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|err| PairError::UnusableKey {
                path: files.key.clone(),
                reason: err.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // Unlike `CertifiedKey::from_der`, a key whose public half cannot be
    // compared is refused too: serving it would fail every handshake later.
    certified.keys_match().map_err(|err| match err {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => PairError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        },
        rustls::Error::InconsistentKeys(_) => PairError::UnusableKey {
            path: files.key.clone(),
            reason: "its public half cannot be compared with the certificate's".to_owned(),
        },
        other => PairError::BadCertificate {
            path: files.cert.clone(),
            reason: other.to_string(),
        },
    })?;
    Ok(LoadedPair {
        certified: Arc::new(certified),
        not_after,
    })
}

/// `unix_seconds` as a certificate shows its dates, for messages.
pub(crate) fn certificate_date(unix_seconds: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(unix_seconds).map_or_else(
        |_| format!("{unix_seconds} (Unix time)"),
        |date| date.to_string(),
    )
}

fn not_after(certificate: &CertificateDer<'_>) -> Result<i64, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(certificate).map_err(|err| err.to_string())?;
    Ok(parsed.validity().not_after.timestamp())
}
