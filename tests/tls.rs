//! TLS on both listeners (issue 16), against the real binary: tokens over
//! HTTPS and gRPC over TLS from clients that trust a CA made per test, ALPN,
//! plaintext and silent clients on TLS ports, HSTS and `Secure` cookies, the
//! plaintext health-only port, certificates swapped under a running server as
//! Kubernetes swaps a Secret, the expiry in `/metrics`, and the start-up
//! errors of a bad pair.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::codes::{CHALLENGE, CODE_CLIENT_ARGS, CODE_REDIRECT_URI};
use common::tls::*;
use common::*;
use oauthd::grpc::pb::token_service_client::TokenServiceClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The longest any test waits for the server to act.
const PATIENCE: Duration = Duration::from_secs(15);

/// Issue 16: a new certificate reaches new connections within this.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

/// The dates the test certificates expire at, with their Unix seconds.
const FIRST_EXPIRY: (i32, u8, u8) = (2031, 1, 2);
const SECOND_EXPIRY: (i32, u8, u8) = (2032, 3, 4);
/// A date that has passed.
const EXPIRED: (i32, u8, u8) = (2020, 1, 2);

/// A test's CA, a pair it signed in a Secret-like volume, a client, and a
/// server speaking TLS on both ports with `extra` arguments.
struct TlsSetup {
    ca: TestCa,
    pair: ServerPair,
    volume: SecretVolume,
    db: TestDb,
    client: TestClient,
    server: Server,
}

impl TlsSetup {
    fn start(extra: &[&str]) -> Self {
        Self::signed_by(TestCa::new(), extra)
    }

    fn signed_by(ca: TestCa, extra: &[&str]) -> Self {
        let pair = ca.server_pair(1, FIRST_EXPIRY);
        Self::serving(ca, pair, extra)
    }

    fn serving(ca: TestCa, pair: ServerPair, extra: &[&str]) -> Self {
        let volume = SecretVolume::of(&pair);
        let db = TestDb::new();
        let client = create_full_client(&db.url);
        let mut args = volume.args();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let server = start_tls(&db, &args);
        Self {
            ca,
            pair,
            volume,
            db,
            client,
            server,
        }
    }

    /// A `client_credentials` request over HTTPS with `http`: its status,
    /// HTTP version and HSTS header.
    async fn https_token(&self, http: &reqwest::Client) -> (u16, reqwest::Version, Option<String>) {
        let response = http
            .post(https_url(&self.server, "/oauth/token"))
            .basic_auth(&self.client.id, self.client.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .map(|value| value.to_str().unwrap().to_owned());
        let (status, version) = (response.status().as_u16(), response.version());
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 200 {
            assert!(body["access_token"].is_string(), "{body}");
        }
        (status, version, hsts)
    }

    /// A `client_credentials` token over gRPC on `channel`, which must be issued.
    async fn grpc_token(&self, channel: tonic::transport::Channel) {
        let issued = TokenServiceClient::new(channel)
            .issue_token(client_credentials_request(&self.client))
            .await
            .unwrap()
            .into_inner();
        assert!(!issued.access_token.is_empty());
    }
}

#[tokio::test]
async fn tokens_are_issued_over_https_and_grpc_over_tls() {
    let setup = TlsSetup::start(&[]);
    let (status, version, hsts) = setup.https_token(&https_client(&setup.ca)).await;
    assert_eq!(status, 200, "{}", setup.server.log());
    assert_eq!(version, reqwest::Version::HTTP_2, "h2 through ALPN");
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));
    setup
        .grpc_token(tls_channel(&setup.server, &setup.ca).await)
        .await;
}

#[tokio::test]
async fn alpn_settles_on_h2_on_both_ports_and_http1_only_on_the_http_port() {
    let setup = TlsSetup::start(&[]);
    let (ca, server) = (&setup.ca, &setup.server);
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    for addr in [server.http_addr, server.grpc_addr] {
        assert_eq!(
            negotiated(addr, ca, both).await.unwrap().as_deref(),
            Some(&b"h2"[..])
        );
    }
    assert_eq!(
        negotiated(server.http_addr, ca, &[b"http/1.1"])
            .await
            .unwrap()
            .as_deref(),
        Some(&b"http/1.1"[..])
    );
    // gRPC is HTTP/2 only: a client that cannot speak it is refused in the
    // handshake rather than left to fail on its first request.
    assert!(
        negotiated(server.grpc_addr, ca, &[b"http/1.1"])
            .await
            .is_err()
    );
    let (status, version, hsts) = setup.https_token(&https1_client(ca)).await;
    assert_eq!((status, version), (200, reqwest::Version::HTTP_11));
    assert!(hsts.is_some());
}

#[tokio::test]
async fn plaintext_on_a_tls_port_fails_cleanly_and_the_server_keeps_serving() {
    let setup = TlsSetup::start(&[]);
    let server = &setup.server;
    let plain = reqwest::Client::new();
    assert!(
        plain
            .post(server.url("/oauth/token"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .is_err(),
        "plaintext HTTP got an answer from a TLS port"
    );
    // A raw HTTP/1.1 request gets no HTTP answer, only the end of the connection.
    let mut raw = TcpStream::connect(server.http_addr).await.unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: oauthd\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, raw.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let plaintext_grpc =
        tonic::transport::Channel::from_shared(format!("http://{}", server.grpc_addr))
            .unwrap()
            .connect()
            .await;
    if let Ok(channel) = plaintext_grpc {
        assert!(
            TokenServiceClient::new(channel)
                .issue_token(client_credentials_request(&setup.client))
                .await
                .is_err()
        );
    }
    let (status, _, _) = setup.https_token(&https_client(&setup.ca)).await;
    assert_eq!(status, 200);
    setup.grpc_token(tls_channel(server, &setup.ca).await).await;
}

/// Whether `stream` is still open after `wait`: nothing read and no end.
async fn still_open_after(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut byte))
        .await
        .is_err()
}

/// Whether the server closes `stream` (end or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_silent_in_the_handshake_is_closed_by_the_idle_timeout_and_blocks_nobody() {
    let setup = TlsSetup::start(&[
        "--idle-timeout",
        "4",
        "--request-timeout",
        "1",
        "--http2-keepalive-interval",
        "1",
    ]);
    let server = &setup.server;
    let mut silent_http = TcpStream::connect(server.http_addr).await.unwrap();
    let mut silent_grpc = TcpStream::connect(server.grpc_addr).await.unwrap();
    // Others are served while both wait in their handshakes.
    let (status, _, _) = setup.https_token(&https_client(&setup.ca)).await;
    assert_eq!(status, 200);
    setup.grpc_token(tls_channel(server, &setup.ca).await).await;
    let wait = Duration::from_millis(1500);
    let (http_open, grpc_open) = tokio::join!(
        still_open_after(&mut silent_http, wait),
        still_open_after(&mut silent_grpc, wait)
    );
    assert!(http_open && grpc_open, "closed before the idle timeout");
    let (http_closed, grpc_closed) = tokio::join!(
        closed_within(&mut silent_http, PATIENCE),
        closed_within(&mut silent_grpc, PATIENCE)
    );
    assert!(
        http_closed && grpc_closed,
        "a silent client outlived the idle timeout"
    );
}

#[tokio::test]
async fn hsts_and_secure_cookies_come_with_https_and_not_without() {
    let setup = TlsSetup::start(&["--issuer", "https://localhost"]);
    let web = create_client(&setup.db.url, &CODE_CLIENT_ARGS);
    let authorize = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={CODE_REDIRECT_URI}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        web.id
    );
    let login = https_client(&setup.ca)
        .get(https_url(&setup.server, &authorize))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "{}", setup.server.log());
    assert_eq!(
        login.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let csrf = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("oauthd_csrf="))
        .expect("the login page sets its CSRF cookie");
    assert!(csrf.contains("; Secure"), "{csrf}");

    let db = TestDb::new();
    let plaintext = Server::start(&db);
    let answer = reqwest::get(plaintext.url("/healthz")).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("strict-transport-security").is_none());
}

/// The address of the health-only listener, from the server's log.
async fn health_addr(server: &Server) -> std::net::SocketAddr {
    let logged = || {
        server.log().lines().find_map(|line| {
            let rest = line.split("health listening on ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    assert!(
        eventually(PATIENCE, || async { logged().is_some() }).await,
        "{}",
        server.log()
    );
    logged().unwrap()
}

#[tokio::test]
async fn the_health_port_answers_in_plaintext_while_the_main_ports_speak_tls() {
    let setup = TlsSetup::start(&["--health-addr", "127.0.0.1:0"]);
    let addr = health_addr(&setup.server).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "liveness", "oauthd.v1.TokenService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    // Health and nothing else: tokens stay behind TLS.
    let refused = TokenServiceClient::new(channel)
        .issue_token(client_credentials_request(&setup.client))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn a_swapped_certificate_reaches_new_connections_while_open_ones_keep_working() {
    let setup = TlsSetup::start(&[]);
    let server = &setup.server;
    let (ca, first) = (&setup.ca, setup.pair.clone());
    for addr in [server.http_addr, server.grpc_addr] {
        assert_eq!(presented_certificate(addr, ca).await, first.der);
    }
    // Connections opened before the swap, and used once already.
    let open_http = https_client(ca);
    assert_eq!(setup.https_token(&open_http).await.0, 200);
    let open_grpc = tls_channel(server, ca).await;
    setup.grpc_token(open_grpc.clone()).await;

    let second = ca.server_pair(2, SECOND_EXPIRY);
    setup.volume.swap(&second.cert_pem, &second.key_pem);
    for addr in [server.http_addr, server.grpc_addr] {
        assert!(
            eventually(RELOAD_WITHIN, || async {
                presented_certificate(addr, ca).await == second.der
            })
            .await,
            "{addr} still presents the old certificate; log:\n{}",
            server.log()
        );
    }
    assert_eq!(setup.https_token(&open_http).await.0, 200);
    setup.grpc_token(open_grpc.clone()).await;

    // A pair whose key is not the certificate's: refused, logged, and the
    // pair in use stays.
    let third = ca.server_pair(3, FIRST_EXPIRY);
    setup.volume.swap(&third.cert_pem, &first.key_pem);
    assert!(
        eventually(RELOAD_WITHIN, || async {
            server
                .log()
                .matches("refusing the new TLS certificate and key")
                .count()
                == 2
        })
        .await,
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("does not match the certificate"),
        "{}",
        server.log()
    );
    for addr in [server.http_addr, server.grpc_addr] {
        assert_eq!(presented_certificate(addr, ca).await, second.der);
    }
    assert!(!server.log().contains(first.key_pem.lines().nth(1).unwrap()));
    assert_eq!(setup.https_token(&https_client(ca)).await.0, 200);
    setup.grpc_token(open_grpc).await;
}

/// Whether a client that trusts the test's CA and checks dates gets a 200
/// from `/healthz` over HTTPS.
async fn https_healthy(setup: &TlsSetup) -> bool {
    https_client(&setup.ca)
        .get(https_url(&setup.server, "/healthz"))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
}

#[tokio::test]
async fn an_expired_certificate_is_served_with_a_warning_until_a_renewal_replaces_it() {
    let ca = TestCa::new();
    let expired = ca.server_pair(1, EXPIRED);
    let setup = TlsSetup::serving(ca, expired, &[]);
    let server = &setup.server;
    let log = server.log();
    assert!(
        log.contains("the TLS certificate has expired") && log.contains("2020"),
        "{log}"
    );
    assert!(
        !https_healthy(&setup).await,
        "a client accepted an expired certificate"
    );

    let renewed = setup.ca.server_pair(2, FIRST_EXPIRY);
    setup.volume.swap(&renewed.cert_pem, &renewed.key_pem);
    assert!(
        eventually(RELOAD_WITHIN, || https_healthy(&setup)).await,
        "{}",
        server.log()
    );
    assert_eq!(expiry(&setup, "http").await as i64, renewed.not_after);
}

#[tokio::test]
async fn an_expired_renewal_is_refused_while_the_certificate_in_use_is_valid() {
    let setup = TlsSetup::start(&[]);
    let server = &setup.server;
    let expired = setup.ca.server_pair(2, EXPIRED);
    setup.volume.swap(&expired.cert_pem, &expired.key_pem);
    assert!(
        eventually(RELOAD_WITHIN, || async {
            server
                .log()
                .contains("refusing the new TLS certificate and key")
        })
        .await,
        "{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("expired on") && log.contains("2020"), "{log}");
    assert!(!log.contains("the TLS certificate has expired"), "{log}");
    for addr in [server.http_addr, server.grpc_addr] {
        assert_eq!(presented_certificate(addr, &setup.ca).await, setup.pair.der);
    }
    assert_eq!(expiry(&setup, "http").await as i64, setup.pair.not_after);
}

/// The expiry gauge of `listener`, read over HTTPS.
async fn expiry(setup: &TlsSetup, listener: &str) -> f64 {
    let text = https_client(&setup.ca)
        .get(https_url(&setup.server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    series_value(
        &text,
        &format!("oauthd_tls_certificate_expiry_seconds{{listener=\"{listener}\"}}"),
    )
}

#[tokio::test]
async fn metrics_show_each_listeners_certificate_expiry_and_follow_a_reload() {
    let ca = TestCa::new();
    let grpc_pair = ca.server_pair(7, SECOND_EXPIRY);
    let grpc_volume = SecretVolume::of(&grpc_pair);
    let (grpc_cert, grpc_key) = (grpc_volume.cert(), grpc_volume.key());
    let setup = TlsSetup::signed_by(
        ca,
        &[
            "--grpc-tls-cert",
            grpc_cert.to_str().unwrap(),
            "--grpc-tls-key",
            grpc_key.to_str().unwrap(),
        ],
    );
    let server = &setup.server;
    assert_eq!(expiry(&setup, "http").await as i64, setup.pair.not_after);
    assert_eq!(expiry(&setup, "grpc").await as i64, grpc_pair.not_after);
    assert_eq!(
        presented_certificate(server.http_addr, &setup.ca).await,
        setup.pair.der
    );
    assert_eq!(
        presented_certificate(server.grpc_addr, &setup.ca).await,
        grpc_pair.der
    );

    let renewed = setup.ca.server_pair(8, SECOND_EXPIRY);
    setup.volume.swap(&renewed.cert_pem, &renewed.key_pem);
    assert!(
        eventually(RELOAD_WITHIN, || async {
            expiry(&setup, "http").await as i64 == renewed.not_after
        })
        .await
    );
}

/// Runs `oauthd serve` with `args`, which must fail at start, and returns its
/// standard error.
fn refused_start(args: &[&str]) -> String {
    let output = std::process::Command::new(BIN)
        .arg("serve")
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--database-url", "sqlite::memory:"])
        .args(args)
        .env_remove("OAUTHD_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{args:?} started: {stderr}");
    stderr
}

#[test]
fn a_bad_pair_stops_the_start_with_a_message_that_names_the_problem() {
    let ca = TestCa::new();
    let (pair, other) = (
        ca.server_pair(1, FIRST_EXPIRY),
        ca.server_pair(2, FIRST_EXPIRY),
    );
    let mismatched = SecretVolume::new(&pair.cert_pem, &other.key_pem);
    let good = SecretVolume::of(&pair);
    let not_pem = SecretVolume::new("not a certificate", &pair.key_pem);
    let (cert, key) = (mismatched.cert(), mismatched.key());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let stderr = refused_start(&["--tls-cert", cert, "--tls-key", key]);
    assert!(
        stderr.contains(&format!(
            "the TLS private key {key} does not match the certificate {cert}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(other.key_pem.lines().nth(1).unwrap()));

    let good_key = good.key();
    let good_key = good_key.to_str().unwrap();
    let stderr = refused_start(&["--tls-cert", "/nonexistent/tls.crt", "--tls-key", good_key]);
    assert!(
        stderr.contains("cannot read the TLS certificate /nonexistent/tls.crt"),
        "{stderr}"
    );

    let not_pem_cert = not_pem.cert();
    let not_pem_cert = not_pem_cert.to_str().unwrap();
    let stderr = refused_start(&["--tls-cert", not_pem_cert, "--tls-key", good_key]);
    assert!(
        stderr.contains(&format!("no PEM certificate in {not_pem_cert}")),
        "{stderr}"
    );

    for (given, missing) in [
        ("--tls-cert", "tls_key"),
        ("--tls-key", "tls_cert"),
        ("--http-tls-cert", "http_tls_key"),
        ("--grpc-tls-key", "grpc_tls_cert"),
    ] {
        let stderr = refused_start(&[given, good_key]);
        assert!(
            stderr.contains(&format!("invalid setting {missing}")),
            "{given}: {stderr}"
        );
        assert!(stderr.contains("give both or neither"), "{given}: {stderr}");
    }
}
