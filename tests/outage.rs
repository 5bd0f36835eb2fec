//! A PostgreSQL outage (issue 4): a TCP proxy between the server and the
//! database is cut and restored. While it is cut, requests fail fast with
//! `temporarily_unavailable`, readiness and gRPC health say so, liveness does
//! not; afterwards the server recovers by itself and nothing is lost.
//!
//! This test needs PostgreSQL (`OAUTHD_TEST_DATABASE_URL`, else the local
//! default) and fails when none answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A loopback TCP proxy that can drop every connection and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up_flag, registry) = (Arc::clone(&up), Arc::clone(&links));
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(link);
            }
        });
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

fn upstream_of(url: &str) -> SocketAddr {
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().unwrap()
}

async fn post(
    server: &Server,
    client: &TestClient,
    form: &[(&str, &str)],
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, started.elapsed())
}

async fn health(server: &Server) -> ServingStatus {
    let mut client = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest {
        service: "oauthd.v1.TokenService".into(),
    };
    client.check(request).await.unwrap().into_inner().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_fast_and_the_server_recovers_without_losing_anything() {
    let db = TestDb::postgres_required();
    let proxy = Proxy::start(upstream_of(&db.url)).await;
    let server = Server::start_on(&db.url_via(proxy.addr), &[]);
    let client = create_full_client(&db.url);
    create_user(&db.url, "pat", "pw-123456", &[]);
    let login = [
        ("grant_type", "password"),
        ("username", "pat"),
        ("password", "pw-123456"),
    ];
    let (status, before, _) = post(&server, &client, &login).await;
    assert_eq!(status, 200);

    proxy.cut();
    for _ in 0..3 {
        let (status, body, took) = post(&server, &client, &login).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
        assert!(
            took < Duration::from_millis(2500),
            "a request took {took:?}"
        );
    }
    let cc = [("grant_type", "client_credentials")];
    let refused = eventually(Duration::from_secs(3), || async {
        post(&server, &client, &cc).await.0 == 503
    })
    .await;
    assert!(
        refused,
        "token requests are refused while the database is away"
    );
    let grpc_err = server
        .grpc()
        .await
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&grpc_err).0, tonic::Code::Unavailable);
    assert!(
        eventually(Duration::from_secs(3), || async {
            health(&server).await == ServingStatus::NotServing
        })
        .await
    );
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        503
    );
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );

    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || async {
            health(&server).await == ServingStatus::Serving
        })
        .await
    );
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        200
    );
    let (status, _, _) = post(&server, &client, &login).await;
    assert_eq!(status, 200, "the server recovered by itself");
    // What was written before the outage is still there.
    let answer = server
        .grpc()
        .await
        .introspect(introspect_request(
            &client,
            before["access_token"].as_str().unwrap(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.active,
        "a token issued before the outage is still active"
    );
    let refresh = before["refresh_token"].as_str().unwrap();
    let (status, _, _) = post(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 200, "its refresh token still works");
}

async fn check_status(server: &Server, token: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .get(server.url("/oauth/check"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

/// Envoy's `Check` of the same token: its gRPC code and HTTP status, and
/// whether it carries a challenge.
async fn envoy_check_status(server: &Server, token: &str) -> (i32, i32, bool) {
    use oauthd::grpc::pb::envoy::service::auth::v3 as ext_authz;
    let http = ext_authz::attribute_context::HttpRequest {
        path: "/api".into(),
        headers: [("authorization".to_owned(), format!("Bearer {token}"))].into(),
        ..Default::default()
    };
    let request = ext_authz::CheckRequest {
        attributes: Some(ext_authz::AttributeContext {
            request: Some(ext_authz::attribute_context::Request { http: Some(http) }),
            ..Default::default()
        }),
    };
    let response =
        ext_authz::authorization_client::AuthorizationClient::new(server.channel().await)
            .check(request)
            .await
            .unwrap()
            .into_inner();
    let code = response.status.unwrap().code;
    match response.http_response {
        Some(ext_authz::check_response::HttpResponse::DeniedResponse(denied)) => (
            code,
            denied.status.unwrap().code,
            denied
                .headers
                .iter()
                .any(|h| h.header.as_ref().unwrap().key == "www-authenticate"),
        ),
        _ => (code, 200, false),
    }
}

/// SPEC §9: `503` only when the check needs the database and it does not
/// answer, for `/oauth/check` and Envoy's `Check` alike (`UNAVAILABLE`, 14). A JWT needs nothing but memory; an opaque token this server has
/// never seen needs a lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_is_503_only_when_it_needs_the_database() {
    let db = TestDb::postgres_required();
    let proxy = Proxy::start(upstream_of(&db.url)).await;
    let jwt_server = Server::start_on(&db.url_via(proxy.addr), &[]);
    let opaque_server = Server::start_on(&db.url_via(proxy.addr), &["--token-format", "opaque"]);
    let client = create_client(&db.url, &["--scopes", "read"]);
    let jwt = jwt_server
        .client_credentials_token(&client)
        .await
        .access_token;
    let unseen = opaque_server
        .client_credentials_token(&client)
        .await
        .access_token;
    assert_eq!(check_status(&jwt_server, &jwt).await.0, 200);

    proxy.cut();
    assert!(
        eventually(Duration::from_secs(3), || async {
            reqwest::get(opaque_server.url("/readyz"))
                .await
                .unwrap()
                .status()
                == 503
        })
        .await
    );
    assert_eq!(check_status(&opaque_server, &unseen).await, (503, None));
    // Through nginx too, whose auth_request would make it a 500 but for
    // deploy/proxies/nginx.conf's mapping.
    let upstream = common::upstream::Upstream::start();
    let nginx = common::proxies::Nginx::start(opaque_server.http_addr, upstream.addr);
    let through_nginx = reqwest::Client::new()
        .get(nginx.url("/api/items"))
        .bearer_auth(&unseen)
        .send()
        .await
        .unwrap();
    assert_eq!(through_nginx.status(), 503);
    assert_eq!(upstream.served(), 0);
    assert_eq!(
        envoy_check_status(&opaque_server, &unseen).await,
        (14, 503, false)
    );
    assert_eq!(check_status(&jwt_server, &jwt).await.0, 200);
    assert_eq!(envoy_check_status(&jwt_server, &jwt).await, (0, 200, false));
    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || async {
            check_status(&opaque_server, &unseen).await.0 == 200
        })
        .await
    );
}
