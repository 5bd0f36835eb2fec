//! Connection limits on both listeners (issue 11): stalled and silent clients
//! are closed by their timeouts, connections past the cap are closed at once
//! while open ones keep getting tokens, SIGTERM with a stalled client still
//! exits 0 within the drain deadline, and an oversized declared body gets 413
//! before anything is read.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests time the server's deadlines with the wall clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The longest any test waits for the server to act.
const PATIENCE: Duration = Duration::from_secs(15);

/// Reads until the server closes the connection (EOF or reset), at most
/// `within`. Returns what was read and when the connection closed, or panics
/// if it is still open.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, Instant::now()),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "connection still open after {within:?}; read so far: {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

/// A connection holding the first half of a request head.
async fn half_a_header(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr).await;
    stream
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: oauthd\r\nContent-Ty")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn a_connection_that_sends_half_a_header_is_closed_by_the_header_timeout() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--http-header-timeout", "1"]);
    let started = Instant::now();
    let mut stream = half_a_header(server.http_addr).await;
    let (_, closed) = read_until_closed(&mut stream, PATIENCE).await;
    let open_for = closed - started;
    assert!(
        open_for >= Duration::from_millis(900),
        "closed after {open_for:?}, before the timeout"
    );
    assert!(
        open_for < Duration::from_secs(5),
        "closed after {open_for:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_header_timeout() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--http-header-timeout", "1"]);
    let mut stream = connect(server.http_addr).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oauthd\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 15];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200 OK");
    let answered = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, PATIENCE).await;
    let idle_for = closed - answered;
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?} idle"
    );
    assert!(
        idle_for < Duration::from_secs(5),
        "closed after {idle_for:?}"
    );
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_on_both_ports() {
    let db = TestDb::new();
    let server = Server::start_with(
        &db,
        &[
            "--idle-timeout",
            "2",
            "--request-timeout",
            "1",
            "--http2-keepalive-interval",
            "1",
        ],
    );
    let started = Instant::now();
    let mut silent_http = connect(server.http_addr).await;
    let mut silent_grpc = connect(server.grpc_addr).await;
    // A client that starts the HTTP/2 preface on the HTTP port and stops.
    let mut half_preface = connect(server.http_addr).await;
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    for (name, stream) in [
        ("HTTP", &mut silent_http),
        ("gRPC", &mut silent_grpc),
        ("HTTP, half an HTTP/2 preface", &mut half_preface),
    ] {
        let (_, closed) = read_until_closed(stream, PATIENCE).await;
        let open_for = closed - started;
        assert!(
            open_for >= Duration::from_millis(1900),
            "{name}: closed after {open_for:?}, before the idle timeout"
        );
        assert!(
            open_for < Duration::from_secs(6),
            "{name}: closed after {open_for:?}"
        );
    }
}

#[tokio::test]
async fn a_healthy_idle_grpc_client_outlives_the_idle_timeout() {
    // Keep-alive PINGs every second keep a silent but healthy client talking.
    let db = TestDb::new();
    let server = Server::start_with(
        &db,
        &[
            "--idle-timeout",
            "2",
            "--request-timeout",
            "1",
            "--http2-keepalive-interval",
            "1",
        ],
    );
    let client = create_full_client(&db.url);
    let channel = server.channel().await;
    let mut grpc = oauthd::grpc::pb::token_service_client::TokenServiceClient::new(channel);
    grpc.issue_token(client_credentials_request(&client))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    grpc.issue_token(client_credentials_request(&client))
        .await
        .expect("the idle connection is still open");
}

async fn http_token(http: &reqwest::Client, server: &Server, client: &TestClient) -> u16 {
    let response = http
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    // Read the body to its end: only then does the connection go back to the
    // pool, and a request that opened a new one would meet the cap.
    response.bytes().await.unwrap();
    status
}

async fn refused_count(http: &reqwest::Client, server: &Server, listener: &str) -> u64 {
    let text = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("oauthd_connections_refused_total{{listener=\"{listener}\"}}");
    series_value(&text, &series) as u64
}

/// `--max-connections 4`: with one keep-alive client and three stalled
/// connections open, a fifth connection is closed at once; the keep-alive
/// client keeps getting tokens, and a new client gets in once slots free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_new_connections_are_closed_while_open_ones_get_tokens() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--max-connections", "4"]);
    let client = create_full_client(&db.url);

    // HTTP: the keep-alive client's connection is the first of four. It speaks
    // HTTP/2, so every request rides that one connection: an HTTP/1 pool may
    // open a second one while the first is still being handed back, and that
    // one would meet the cap.
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert_eq!(http_token(&http, &server, &client).await, 200);
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(half_a_header(server.http_addr).await);
    }
    let asked = Instant::now();
    let mut fifth = connect(server.http_addr).await;
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: oauthd\r\n\r\n")
        .await;
    let (answer, closed) = read_until_closed(&mut fifth, PATIENCE).await;
    assert!(
        answer.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        closed - asked < Duration::from_secs(2),
        "not closed at once"
    );
    for _ in 0..5 {
        assert_eq!(http_token(&http, &server, &client).await, 200);
    }
    assert!(refused_count(&http, &server, "http").await >= 1);

    // gRPC: one channel and three silent connections fill the cap.
    let mut grpc = server.grpc().await;
    grpc.issue_token(client_credentials_request(&client))
        .await
        .unwrap();
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect(server.grpc_addr).await);
    }
    let asked = Instant::now();
    let mut fifth = connect(server.grpc_addr).await;
    let (answer, closed) = read_until_closed(&mut fifth, PATIENCE).await;
    assert!(
        answer.is_empty(),
        "a refused connection gets no HTTP/2 settings"
    );
    assert!(
        closed - asked < Duration::from_secs(2),
        "not closed at once"
    );
    for _ in 0..5 {
        grpc.issue_token(client_credentials_request(&client))
            .await
            .expect("the open channel keeps getting tokens");
    }
    assert!(refused_count(&http, &server, "grpc").await >= 1);

    // Once the stalled clients leave, new clients get in.
    drop(stalled);
    drop(silent);
    let fresh_http = reqwest::Client::new();
    assert!(
        eventually(PATIENCE, || async {
            fresh_http
                .get(server.url("/healthz"))
                .send()
                .await
                .is_ok_and(|response| response.status() == 200)
        })
        .await
    );
    assert!(
        eventually(PATIENCE, || async {
            let Ok(mut grpc) = oauthd::grpc::pb::token_service_client::TokenServiceClient::connect(
                format!("http://{}", server.grpc_addr),
            )
            .await
            else {
                return false;
            };
            grpc.issue_token(client_credentials_request(&client))
                .await
                .is_ok()
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stalled_clients_exits_zero_within_the_drain_deadline() {
    let db = TestDb::new();
    // Every other timeout is far longer than the test.
    let server = Server::start_with(&db, &["--shutdown-grace", "2"]);
    let mut stalled_http = half_a_header(server.http_addr).await;
    let mut stalled_grpc = connect(server.grpc_addr).await;
    stalled_grpc.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    // An open keep-alive connection that is idle: drained at once.
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Both stalled connections have been accepted once a request after them
    // has been answered on each port.
    assert_eq!(
        reqwest::Client::new()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.grpc().await;

    let signalled = Instant::now();
    server.send_sigterm();
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_millis(1900),
        "exited after {took:?}: the stalled clients were not waited for"
    );
    assert!(took < Duration::from_secs(6), "exited after {took:?}");
    read_until_closed(&mut stalled_http, Duration::from_secs(2)).await;
    read_until_closed(&mut stalled_grpc, Duration::from_secs(2)).await;
}

/// Splits a raw HTTP/1.1 answer into its status line and JSON body.
fn status_and_json(answer: &[u8]) -> (String, Value) {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head.lines().next().unwrap().to_owned();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn assert_body_too_large(answer: &[u8]) {
    let (status, body) = status_and_json(answer);
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "The request body is larger than 64 KiB"
    );
}

const OVERSIZED_HEAD: &str = "POST /oauth/token HTTP/1.1\r\nHost: oauthd\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n";

#[tokio::test]
async fn a_declared_body_over_64_kib_gets_413_before_any_of_it_is_sent() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let mut stream = connect(server.http_addr).await;
    stream
        .write_all(format!("{OVERSIZED_HEAD}\r\n").as_bytes())
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_body_too_large(&answer);
}

#[tokio::test]
async fn expect_100_continue_with_an_oversized_body_gets_413_and_no_100_continue() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let mut stream = connect(server.http_addr).await;
    stream
        .write_all(format!("{OVERSIZED_HEAD}Expect: 100-continue\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("100 Continue"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_body_too_large(&answer);
}

#[tokio::test]
async fn expect_100_continue_with_a_small_body_still_gets_100_continue() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let body = "grant_type=client_credentials";
    let mut stream = connect(server.http_addr).await;
    stream
        .write_all(
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: oauthd\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("an interim answer")
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let (status, json) = status_and_json(&answer);
    // No client credentials: the form was read and judged.
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert_eq!(json["error"], "invalid_client");
}

#[tokio::test]
async fn a_request_whose_body_stalls_gets_503_after_the_request_timeout() {
    let db = TestDb::new();
    let server = Server::start_with(
        &db,
        &[
            "--request-timeout",
            "1",
            "--idle-timeout",
            "5",
            "--http2-keepalive-interval",
            "1",
        ],
    );
    let mut stream = connect(server.http_addr).await;
    let started = Instant::now();
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: oauthd\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stream, PATIENCE).await;
    let took = closed - started;
    let (status, json) = status_and_json(&answer);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(json["error"], "temporarily_unavailable");
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[tokio::test]
async fn the_http_port_still_speaks_http2_with_prior_knowledge() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let response = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[test]
fn limits_that_cannot_work_together_are_refused_at_start() {
    for args in [
        &["--idle-timeout", "10", "--request-timeout", "10"][..],
        &["--idle-timeout", "20", "--http2-keepalive-interval", "30"][..],
        &["--http-max-header-bytes", "4096"][..],
        &["--max-connections", "0"][..],
        &["--shutdown-grace", "0"][..],
        &["--idle-timeout", "18446744073709551615"][..],
        &["--max-connections", "18446744073709551615"][..],
    ] {
        let output = std::process::Command::new(BIN)
            .arg("serve")
            .args(args)
            .args(["--database-url", "sqlite::memory:"])
            .env_remove("OAUTHD_CONFIG")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid setting"), "{args:?}: {stderr}");
    }
}
