//! gRPC health and readiness follow the database: NOT_SERVING while it does not
//! answer, SERVING again once it does, with no restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn status(server: &Server, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest {
        service: service.into(),
    };
    health.check(request).await.unwrap().into_inner().status()
}

async fn all_are(server: &Server, wanted: ServingStatus) -> bool {
    eventually(Duration::from_secs(3), || async {
        status(server, "").await == wanted
            && status(server, "oauthd.v1.TokenService").await == wanted
    })
    .await
}

#[tokio::test]
async fn health_goes_not_serving_while_the_database_file_is_gone_and_recovers() {
    let db = TestDb::sqlite();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let path = db.sqlite_path.clone().unwrap();
    let token = server.client_credentials_token(&client).await;
    assert!(all_are(&server, ServingStatus::Serving).await);

    // The file disappears from under the server (as root, chmod would not stop
    // anyone from reading it, so the test takes the file away instead).
    let aside = path.with_extension("aside");
    std::fs::rename(&path, &aside).unwrap();
    assert!(all_are(&server, ServingStatus::NotServing).await);
    assert_eq!(
        status(&server, "liveness").await,
        ServingStatus::Serving,
        "liveness ignores the database"
    );
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let live = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(live.status(), 200);
    let refused = server
        .grpc()
        .await
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap_err();
    let (code, reason, _) = oauth_error(&refused);
    assert_eq!(
        (code, reason.as_str()),
        (tonic::Code::Unavailable, "temporarily_unavailable")
    );

    std::fs::rename(&aside, &path).unwrap();
    assert!(all_are(&server, ServingStatus::Serving).await);
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        200
    );
    server
        .grpc()
        .await
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap();
    let answer = server
        .grpc()
        .await
        .introspect(introspect_request(&client, &token.access_token))
        .await
        .unwrap();
    assert!(
        answer.into_inner().active,
        "a token issued before the outage survives it"
    );
}

#[tokio::test]
async fn reflection_lists_the_token_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let db = TestDb::new();
    let server = Server::start(&db);
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"oauthd.v1.TokenService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let db = TestDb::new();
    let server = Server::start(&db);
    assert!(server.terminate().success());
}
