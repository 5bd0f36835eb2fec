//! What the server logs of a request it cannot trust: a `client_id` only once
//! the client has authenticated (a short prefix otherwise), and the matched
//! route rather than the raw path, so a secret pasted into the wrong place does
//! not end up in the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use oauthd::grpc::pb;

/// Waits until the server has logged a line containing every one of `parts`.
async fn logged(server: &Server, parts: &[&str]) -> String {
    let found = eventually(Duration::from_secs(5), || async {
        server
            .log()
            .lines()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    })
    .await;
    let log = server.log();
    assert!(found, "no line with {parts:?} in:\n{log}");
    log
}

#[tokio::test]
async fn an_unauthenticated_client_id_is_logged_as_a_short_prefix_only() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let pasted = "ocs_Q2hhbmdlVGhpc1NlY3JldEJlZm9yZVlvdVNoaXBJdDEyMzQ1Njc4OTA";
    let http = reqwest::Client::new();

    // In the body, with no secret, as a public client would send it.
    let response = http
        .post(server.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", pasted)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Over Basic, with a secret.
    let response = http
        .post(server.url("/oauth/token"))
        .basic_auth(pasted, Some("whatever"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Introspection and revocation log the same way.
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let response = http
            .post(server.url(path))
            .basic_auth(pasted, Some("whatever"))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    // Over gRPC.
    let status = server
        .grpc()
        .await
        .issue_token(pb::IssueTokenRequest {
            client: Some(pb::ClientCredentials {
                client_id: pasted.into(),
                client_secret: Some("whatever".into()),
            }),
            grant_type: "client_credentials".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    // A failure after authentication is no proof either: the id stays short.
    let response = http
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "implicit")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // And a success logs the authenticated id whole.
    let response = http
        .post(server.url("/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    logged(&server, &[r#"route="/oauth/introspect""#, "ocs_Q2hh..."]).await;
    logged(&server, &[r#"route="/oauth/revoke""#, "ocs_Q2hh..."]).await;
    logged(&server, &["IssueToken", "ocs_Q2hh...", "invalid_client"]).await;
    logged(&server, &["unsupported_grant_type", &client.id[..8]]).await;
    let log = logged(&server, &[r#"route="/oauth/token""#, "success", &client.id]).await;
    let token_lines = log
        .lines()
        .filter(|line| line.contains(r#"route="/oauth/token""#) && line.contains("ocs_Q2hh..."))
        .count();
    assert_eq!(token_lines, 2, "{log}");
    assert!(!log.contains(&pasted[..9]), "{log}");
    assert!(!log.contains("whatever"), "{log}");
    let refused = log
        .lines()
        .find(|line| line.contains("unsupported_grant_type"))
        .unwrap();
    assert!(!refused.contains(&client.id), "{refused}");
}

#[tokio::test]
async fn the_log_names_the_route_and_never_a_raw_path() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let http = reqwest::Client::new();
    let secret = "ort_c2VjcmV0LXRva2VuLWluLWEtcGF0aA1234567890";
    for path in [
        format!("/oauth/token/{secret}"),
        format!("/{secret}"),
        format!("/api/v1/{secret}/token"),
    ] {
        let response = http.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // A matched route with something after `?` logs just the route.
    let response = http
        .post(server.url(&format!("/oauth/token?client_secret={secret}")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let unmatched_lines = |log: &str| {
        log.lines()
            .filter(|line| line.contains(r#"route="unmatched""#) && line.contains("status=404"))
            .count()
    };
    let all_logged = eventually(Duration::from_secs(5), || async {
        let log = server.log();
        unmatched_lines(&log) == 3 && log.contains(r#"route="/oauth/token""#)
    })
    .await;
    let log = server.log();
    assert!(all_logged, "{log}");
    assert!(!log.contains("c2VjcmV0"), "{log}");
    assert!(!log.contains("path="), "{log}");
}
