//! TLS for tests: a certificate authority made per test, server certificates
//! for `localhost` and 127.0.0.1 that it signs, files laid out as Kubernetes
//! mounts a Secret (and swapped the way it swaps one), and clients that trust
//! the authority: raw TLS, reqwest and tonic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::Server;

/// The name every test server certificate carries, and clients ask for.
pub const SERVER_NAME: &str = "localhost";

/// A certificate authority of one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, which clients trust.
    pub pem: String,
}

/// A server certificate and its key, as PEM.
#[derive(Clone)]
pub struct ServerPair {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate as a handshake presents it.
    pub der: CertificateDer<'static>,
    /// Its notAfter, Unix seconds.
    pub not_after: i64,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for `localhost` and 127.0.0.1, valid until the start of
    /// the day given (UTC), with its own serial.
    pub fn server_pair(&self, serial: u64, (year, month, day): (i32, u8, u8)) -> ServerPair {
        let mut params =
            CertificateParams::new(vec![SERVER_NAME.to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        let not_after = rcgen::date_time_ymd(year, month, day);
        params.not_after = not_after;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            not_after: not_after.unix_timestamp(),
        }
    }
}

/// `tls.crt` and `tls.key` in a directory laid out as a Kubernetes Secret
/// volume: each name a symlink through `..data` into a timestamped directory.
pub struct SecretVolume {
    dir: tempfile::TempDir,
    generation: std::cell::Cell<u32>,
}

impl SecretVolume {
    pub fn new(cert_pem: &str, key_pem: &str) -> Self {
        let volume = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: std::cell::Cell::new(0),
        };
        volume.swap(cert_pem, key_pem);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(
                Path::new("..data").join(name),
                volume.dir.path().join(name),
            )
            .unwrap();
        }
        volume
    }

    pub fn of(pair: &ServerPair) -> Self {
        Self::new(&pair.cert_pem, &pair.key_pem)
    }

    /// Writes a new generation of both files and switches `..data` to it in
    /// one rename, as the kubelet does.
    pub fn swap(&self, cert_pem: &str, key_pem: &str) {
        self.generation.set(self.generation.get() + 1);
        let generation = format!("..gen_{}", self.generation.get());
        let target = self.dir.path().join(&generation);
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(target.join("tls.key"), key_pem).unwrap();
        let staged = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &staged).unwrap();
        std::fs::rename(&staged, self.dir.path().join("..data")).unwrap();
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// `--tls-cert` and `--tls-key` for these files.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".to_owned(),
            self.cert().display().to_string(),
            "--tls-key".to_owned(),
            self.key().display().to_string(),
        ]
    }
}

/// A server started with `args` as well as the usual ones.
pub fn start_tls(db: &super::TestDb, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(db, &args)
}

/// A rustls client configuration that trusts `ca` and offers `alpn`.
pub fn client_config(ca: &TestCa, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.pem.as_bytes()).unwrap();
    roots.add(ca_der).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    config
}

/// A TLS connection to `addr`, or why the handshake failed.
pub async fn tls_connect(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(SERVER_NAME).unwrap(), tcp)
        .await
}

/// The certificate a new connection to `addr` is shown.
pub async fn presented_certificate(addr: SocketAddr, ca: &TestCa) -> CertificateDer<'static> {
    let stream = tls_connect(addr, client_config(ca, &[b"h2"]))
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The protocol ALPN settled on for a client offering `offered`, or the
/// handshake's error.
pub async fn negotiated(
    addr: SocketAddr,
    ca: &TestCa,
    offered: &[&[u8]],
) -> std::io::Result<Option<Vec<u8>>> {
    let stream = tls_connect(addr, client_config(ca, offered)).await?;
    Ok(stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
}

/// An HTTPS client trusting `ca`, offering HTTP/2 and HTTP/1.1.
pub fn https_client(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca, &[b"h2", b"http/1.1"]))
        .build()
        .unwrap()
}

/// An HTTPS client trusting `ca` that offers only HTTP/1.1.
pub fn https1_client(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(client_config(ca, &[b"http/1.1"]))
        .http1_only()
        .build()
        .unwrap()
}

/// The server's HTTPS URL for `path`, by the name its certificate carries.
pub fn https_url(server: &Server, path: &str) -> String {
    format!("https://{SERVER_NAME}:{}{path}", server.http_addr.port())
}

/// A gRPC channel over TLS to the server, trusting `ca`.
pub async fn tls_channel(server: &Server, ca: &TestCa) -> Channel {
    Channel::from_shared(format!("https://{SERVER_NAME}:{}", server.grpc_addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca.pem))
                .domain_name(SERVER_NAME),
        )
        .unwrap()
        .connect()
        .await
        .unwrap()
}
