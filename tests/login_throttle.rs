//! Throttling failed logins by client address (issue 11, item 7): one address
//! that keeps failing is refused with `temporarily_unavailable` before any
//! password is checked, the account is not locked by it, and `X-Forwarded-For`
//! counts only from a trusted proxy. Loopback has the whole of 127.0.0.0/8, so
//! a second client address is a socket bound to 127.0.0.2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use oauthd::grpc::pb::token_service_client::TokenServiceClient;
use serde_json::Value;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THROTTLED: &str = "Too many login attempts from this address, try again later";

/// Three failures ban for the default 300 s; no backoff between them, so the
/// test need not wait.
const BAN_AFTER_THREE: &[&str] = &[
    "--login-throttle-max-failures",
    "3",
    "--login-throttle-backoff",
    "0",
];

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn error(&self) -> (u16, &str, &str) {
        (
            self.status,
            self.body["error"].as_str().unwrap_or_default(),
            self.body["error_description"].as_str().unwrap_or_default(),
        )
    }
}

/// A password login over HTTP from `source`, with an optional `X-Forwarded-For`.
async fn http_login(
    server: &Server,
    client: &TestClient,
    source: IpAddr,
    forwarded_for: Option<&str>,
    password: &str,
) -> Answer {
    let http = reqwest::Client::builder()
        .local_address(source)
        .build()
        .unwrap();
    let mut request = http
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
        ]);
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn grpc_from(server: &Server, source: IpAddr) -> TokenServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{}", server.grpc_addr))
        .unwrap()
        .local_address(Some(source))
        .connect()
        .await
        .unwrap();
    TokenServiceClient::new(channel)
}

/// A password login over gRPC; `Err` holds the status.
async fn grpc_login(
    grpc: &mut TokenServiceClient<Channel>,
    client: &TestClient,
    forwarded_for: Option<&str>,
    password: &str,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(password_request(client, "alice", password));
    if let Some(value) = forwarded_for {
        request
            .metadata_mut()
            .insert("x-forwarded-for", value.parse().unwrap());
    }
    grpc.issue_token(request).await.map(drop)
}

fn assert_bad_credentials(answer: &Answer) {
    assert_eq!(
        answer.error(),
        (400, "invalid_grant", "Bad credentials"),
        "{:?}",
        answer.body
    );
}

/// 503 `temporarily_unavailable` with a `Retry-After` of at most `ban` seconds.
fn assert_throttled(answer: &Answer, ban: u64) {
    assert_eq!(
        answer.error(),
        (503, "temporarily_unavailable", THROTTLED),
        "{:?}",
        answer.body
    );
    let retry_after = answer.retry_after.expect("a Retry-After header");
    assert!(
        (1..=ban).contains(&retry_after),
        "Retry-After {retry_after}"
    );
}

fn assert_grpc_throttled(status: &tonic::Status, ban: u64) {
    assert_eq!(
        oauth_error(status),
        (
            Code::Unavailable,
            "temporarily_unavailable".to_owned(),
            THROTTLED.to_owned()
        )
    );
    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a google.rpc.RetryInfo detail");
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(ban)).contains(&delay),
        "{delay:?}"
    );
}

fn setup(args: &[&str]) -> (TestDb, Server, TestClient) {
    let db = TestDb::new();
    let server = Server::start_throttled(&db, args);
    let client = create_full_client(&db.url);
    create_user(&db.url, "alice", "right-password", &[]);
    (db, server, client)
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_refused_even_the_right_password_and_the_user_is_not_locked()
 {
    // Five consecutive failures would lock alice; the address is banned after three.
    let mut args = BAN_AFTER_THREE.to_vec();
    args.extend(["--max-failed-logins", "5"]);
    let (_db, server, client) = setup(&args);
    for _ in 0..3 {
        assert_bad_credentials(&http_login(&server, &client, HOME, None, "wrong").await);
    }
    let refused = http_login(&server, &client, HOME, None, "right-password").await;
    assert_throttled(&refused, 300);
    assert!(
        refused.retry_after.unwrap() >= 290,
        "{:?}",
        refused.retry_after
    );
    // Refused attempts are not checked, so they do not count towards the lock.
    for _ in 0..5 {
        assert_throttled(
            &http_login(&server, &client, HOME, None, "wrong").await,
            300,
        );
    }
    // Another address logs alice in: her account was never locked.
    let other = http_login(&server, &client, ELSEWHERE, None, "right-password").await;
    assert_eq!(other.status, 200, "{:?}", other.body);
    assert!(other.body["access_token"].is_string());
    // The ban was logged once, with the address.
    let log = server.log();
    assert!(
        log.contains("address banned after repeated failed logins") && log.contains("127.0.0.1"),
        "{log}"
    );
}

#[tokio::test]
async fn the_ban_expires() {
    let (_db, server, client) = setup(&[
        "--login-throttle-max-failures",
        "2",
        "--login-throttle-backoff",
        "0",
        "--login-throttle-ban",
        "1",
    ]);
    for _ in 0..2 {
        assert_bad_credentials(&http_login(&server, &client, HOME, None, "wrong").await);
    }
    let refused = http_login(&server, &client, HOME, None, "right-password").await;
    assert_throttled(&refused, 1);
    let let_in = eventually(Duration::from_secs(5), || async {
        http_login(&server, &client, HOME, None, "right-password")
            .await
            .status
            == 200
    })
    .await;
    assert!(let_in, "the ban did not end");
}

#[tokio::test]
async fn failures_slow_an_address_down_before_the_ban() {
    // The defaults: one failure refuses the address for a second.
    let (_db, server, client) = setup(&[]);
    assert_bad_credentials(&http_login(&server, &client, HOME, None, "wrong").await);
    let refused = http_login(&server, &client, HOME, None, "right-password").await;
    assert_throttled(&refused, 1);
    let let_in = eventually(Duration::from_secs(5), || async {
        http_login(&server, &client, HOME, None, "right-password")
            .await
            .status
            == 200
    })
    .await;
    assert!(let_in, "the backoff did not end");
}

#[tokio::test]
async fn over_grpc_a_throttled_login_is_unavailable_with_retry_info() {
    let (_db, server, client) = setup(BAN_AFTER_THREE);
    let mut home = grpc_from(&server, HOME).await;
    for _ in 0..3 {
        let status = grpc_login(&mut home, &client, None, "wrong")
            .await
            .unwrap_err();
        assert_eq!(oauth_error(&status).2, "Bad credentials");
    }
    let status = grpc_login(&mut home, &client, None, "right-password")
        .await
        .unwrap_err();
    assert_grpc_throttled(&status, 300);
    // One count per address, whichever listener the attempts came through.
    assert_throttled(
        &http_login(&server, &client, HOME, None, "right-password").await,
        300,
    );
    let mut elsewhere = grpc_from(&server, ELSEWHERE).await;
    grpc_login(&mut elsewhere, &client, None, "right-password")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let (_db, server, client) = setup(BAN_AFTER_THREE);
    // A fresh made-up address each time: the count is still 127.0.0.1's.
    for n in 1..=3 {
        let spoofed = format!("203.0.113.{n}");
        assert_bad_credentials(&http_login(&server, &client, HOME, Some(&spoofed), "wrong").await);
    }
    assert_throttled(
        &http_login(
            &server,
            &client,
            HOME,
            Some("203.0.113.9"),
            "right-password",
        )
        .await,
        300,
    );
    let mut grpc = grpc_from(&server, HOME).await;
    let status = grpc_login(&mut grpc, &client, Some("203.0.113.10"), "right-password")
        .await
        .unwrap_err();
    assert_grpc_throttled(&status, 300);
}

#[tokio::test]
async fn behind_a_trusted_proxy_x_forwarded_for_names_the_client() {
    let mut args = BAN_AFTER_THREE.to_vec();
    args.extend(["--trusted-proxies", "127.0.0.1/32"]);
    let (_db, server, client) = setup(&args);
    for _ in 0..3 {
        assert_bad_credentials(
            &http_login(&server, &client, HOME, Some("198.51.100.7"), "wrong").await,
        );
    }
    assert_throttled(
        &http_login(
            &server,
            &client,
            HOME,
            Some("198.51.100.7"),
            "right-password",
        )
        .await,
        300,
    );
    // The rightmost address that is not a trusted proxy is the client.
    assert_throttled(
        &http_login(
            &server,
            &client,
            HOME,
            Some("192.0.2.1, 198.51.100.7, 127.0.0.1"),
            "right-password",
        )
        .await,
        300,
    );
    // Another forwarded client, and the proxy itself, are counted apart.
    for forwarded in [Some("198.51.100.8"), None] {
        let answer = http_login(&server, &client, HOME, forwarded, "right-password").await;
        assert_eq!(answer.status, 200, "{forwarded:?}: {:?}", answer.body);
    }
    // gRPC reads the same from its metadata.
    let mut grpc = grpc_from(&server, HOME).await;
    let status = grpc_login(&mut grpc, &client, Some("198.51.100.7"), "right-password")
        .await
        .unwrap_err();
    assert_grpc_throttled(&status, 300);
    grpc_login(&mut grpc, &client, Some("198.51.100.9"), "right-password")
        .await
        .unwrap();
    // A peer outside the trusted list is its own client.
    assert_eq!(
        http_login(
            &server,
            &client,
            ELSEWHERE,
            Some("198.51.100.8"),
            "right-password"
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn a_malformed_x_forwarded_for_counts_against_the_peer() {
    let mut args = BAN_AFTER_THREE.to_vec();
    args.extend(["--trusted-proxies", "127.0.0.1/32"]);
    let (_db, server, client) = setup(&args);
    for malformed in [
        "not-an-address",
        "198.51.100.7,",
        "198.51.100.7 198.51.100.8",
    ] {
        assert_bad_credentials(&http_login(&server, &client, HOME, Some(malformed), "wrong").await);
    }
    // The three failures were the proxy's own.
    assert_throttled(
        &http_login(&server, &client, HOME, None, "right-password").await,
        300,
    );
    let forwarded = http_login(
        &server,
        &client,
        HOME,
        Some("198.51.100.7"),
        "right-password",
    )
    .await;
    assert_eq!(forwarded.status, 200, "{:?}", forwarded.body);
}

#[tokio::test]
async fn one_address_cannot_fill_the_password_queue() {
    // No failure counting; at most two checks in progress per address.
    let (_db, server, client) = setup(&[
        "--login-throttle-max-failures",
        "0",
        "--login-throttle-max-concurrent",
        "2",
    ]);
    let home = grpc_from(&server, HOME).await;
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let mut grpc = home.clone();
            let client = client.clone();
            tokio::spawn(
                async move { grpc_login(&mut grpc, &client, None, "right-password").await },
            )
        })
        .collect();
    let (mut passed, mut refused) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => passed += 1,
            Err(status) => {
                assert_grpc_throttled(&status, 1);
                refused += 1;
            }
        }
    }
    // Argon2 takes tens of milliseconds: twelve calls at once cannot all fit
    // in two slots.
    assert!(
        passed >= 1 && refused >= 1,
        "{passed} passed, {refused} refused"
    );
    let mut elsewhere = grpc_from(&server, ELSEWHERE).await;
    grpc_login(&mut elsewhere, &client, None, "right-password")
        .await
        .unwrap();
}
