//! SIGTERM under load (SPEC §2): every request the server has accepted gets its
//! answer before the process exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_request_in_flight_then_exits_zero() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "quinn", "pw-123456", &[]);

    // Password logins are slow on purpose (Argon2, two at a time), so a burst of
    // them is still in flight when the signal arrives.
    let channel = server.channel().await;
    let mut grpc_calls = Vec::new();
    for _ in 0..24 {
        let mut grpc =
            oauthd::grpc::pb::token_service_client::TokenServiceClient::new(channel.clone());
        let request = password_request(&client, "quinn", "pw-123456");
        grpc_calls.push(tokio::spawn(async move { grpc.issue_token(request).await }));
    }
    let http = reqwest::Client::new();
    let mut http_calls = Vec::new();
    for _ in 0..8 {
        let request = http
            .post(server.url("/oauth/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[
                ("grant_type", "password"),
                ("username", "quinn"),
                ("password", "pw-123456"),
            ]);
        http_calls.push(tokio::spawn(async move { request.send().await }));
    }
    // Let every request reach the server before the signal.
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.send_sigterm();

    for call in grpc_calls {
        call.await
            .unwrap()
            .expect("an accepted gRPC request was answered");
    }
    for call in http_calls {
        let response = call
            .await
            .unwrap()
            .expect("an accepted HTTP request was answered");
        assert_eq!(response.status(), 200);
    }
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
