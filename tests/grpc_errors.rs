//! Every row of SPEC §4's error table over gRPC: the status code of SPEC §6,
//! `google.rpc.ErrorInfo` with the OAuth code, and the description.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oauthd::grpc::pb;
use tonic::Code;

async fn issue_err(server: &Server, request: pb::IssueTokenRequest) -> (Code, String, String) {
    let status = server.grpc().await.issue_token(request).await.unwrap_err();
    oauth_error(&status)
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request_naming_the_parameter() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let request = pb::IssueTokenRequest {
        client: client.credentials(),
        ..Default::default()
    };
    let (code, reason, description) = issue_err(&server, request).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "invalid_request")
    );
    assert!(description.contains("grant_type"), "{description}");
}

#[tokio::test]
async fn password_grant_without_username_has_the_spec_description() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let mut request = password_request(&client, "", "secret");
    request.username = None;
    let err = issue_err(&server, request).await;
    assert_eq!(
        err,
        (
            Code::InvalidArgument,
            "invalid_request".into(),
            "An authorization username must be supplied.".into()
        )
    );
}

#[tokio::test]
async fn wrong_username_or_password_is_bad_credentials() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    create_user(&db.url, "alice", "correct horse", &[]);
    let expected = (
        Code::InvalidArgument,
        "invalid_grant".to_owned(),
        "Bad credentials".to_owned(),
    );
    assert_eq!(
        issue_err(&server, password_request(&client, "alice", "wrong")).await,
        expected
    );
    assert_eq!(
        issue_err(
            &server,
            password_request(&client, "nobody", "correct horse")
        )
        .await,
        expected
    );
}

#[tokio::test]
async fn locked_disabled_and_expired_users_get_their_descriptions() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    for (user, command, description) in [
        ("locked", "lock", "User is locked"),
        ("disabled", "disable", "User is disabled"),
        ("expired", "expire-password", "Password has expired"),
    ] {
        create_user(&db.url, user, "pw-123456", &[]);
        cli(&db.url, &["user", command, user]);
        let err = issue_err(&server, password_request(&client, user, "pw-123456")).await;
        assert_eq!(
            err,
            (
                Code::InvalidArgument,
                "invalid_grant".into(),
                description.into()
            ),
            "{user}"
        );
    }
}

#[tokio::test]
async fn consecutive_failed_logins_lock_the_user_and_success_resets_the_count() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--max-failed-logins", "3"]);
    let client = create_full_client(&db.url);
    create_user(&db.url, "bob", "right-password", &[]);
    let mut grpc = server.grpc().await;

    // Two failures, then a success: the count starts again.
    for _ in 0..2 {
        grpc.issue_token(password_request(&client, "bob", "wrong"))
            .await
            .unwrap_err();
    }
    grpc.issue_token(password_request(&client, "bob", "right-password"))
        .await
        .unwrap();
    for _ in 0..2 {
        grpc.issue_token(password_request(&client, "bob", "wrong"))
            .await
            .unwrap_err();
    }
    grpc.issue_token(password_request(&client, "bob", "right-password"))
        .await
        .unwrap();

    // Three failures in a row lock the account, even for the right password.
    for _ in 0..3 {
        let err = oauth_error(
            &grpc
                .issue_token(password_request(&client, "bob", "wrong"))
                .await
                .unwrap_err(),
        );
        assert_eq!(err.2, "Bad credentials");
    }
    let err = oauth_error(
        &grpc
            .issue_token(password_request(&client, "bob", "right-password"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.2, "User is locked");
    let shown = cli(&db.url, &["user", "unlock", "bob"]);
    assert_eq!(shown["locked"], false);
    grpc.issue_token(password_request(&client, "bob", "right-password"))
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_client_wrong_secret_and_disabled_client_are_invalid_client() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let expected = (
        Code::Unauthenticated,
        "invalid_client".to_owned(),
        "Bad client credentials".to_owned(),
    );

    let unknown = TestClient {
        id: "no-such-client".into(),
        secret: Some("x".into()),
    };
    assert_eq!(
        issue_err(&server, client_credentials_request(&unknown)).await,
        expected
    );

    let mut wrong = client_credentials_request(&client);
    wrong.client = client.with_secret("not-the-secret");
    assert_eq!(issue_err(&server, wrong).await, expected);

    let mut missing = client_credentials_request(&client);
    missing.client = Some(pb::ClientCredentials {
        client_id: client.id.clone(),
        client_secret: None,
    });
    assert_eq!(issue_err(&server, missing).await, expected);

    cli(&db.url, &["client", "disable", &client.id]);
    let refused = eventually(std::time::Duration::from_secs(2), || async {
        server
            .grpc()
            .await
            .issue_token(client_credentials_request(&client))
            .await
            .is_err()
    })
    .await;
    assert!(refused, "disabled client still gets tokens");
    assert_eq!(
        issue_err(&server, client_credentials_request(&client)).await,
        expected
    );
}

#[tokio::test]
async fn a_grant_the_client_may_not_use_is_unauthorized_client_naming_it() {
    let db = TestDb::new();
    let server = Server::start(&db);
    // The default: client_credentials only; the password grant is off.
    let client = create_client(&db.url, &[]);
    create_user(&db.url, "carol", "pw-123456", &[]);
    let (code, reason, description) =
        issue_err(&server, password_request(&client, "carol", "pw-123456")).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::PermissionDenied, "unauthorized_client")
    );
    assert!(description.contains("password"), "{description}");
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_naming_it() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let mut request = client_credentials_request(&client);
    request.grant_type = "urn:ietf:params:oauth:grant-type:device_code".into();
    let (code, reason, description) = issue_err(&server, request).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "unsupported_grant_type")
    );
    assert!(description.contains("device_code"), "{description}");
}

#[tokio::test]
async fn a_scope_outside_the_clients_is_invalid_scope_naming_it() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let mut request = client_credentials_request(&client);
    request.scope = Some("read admin".into());
    let (code, reason, description) = issue_err(&server, request).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "invalid_scope")
    );
    assert!(description.contains("admin"), "{description}");
}
