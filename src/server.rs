//! `oauthd serve`: bind (port 0 aware), log the bound addresses, serve gRPC and
//! HTTP from one process, and shut down gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::open_store;
use crate::clock;
use crate::config::Config;
use crate::grpc::health::follow_database;
use crate::grpc::pb;
use crate::grpc::pb::token_service_server::TokenServiceServer;
use crate::grpc::token_service::TokenServiceImpl;
use crate::http::Metrics;
use crate::oauth::Core;
use crate::oauth::revocation_limit::RevocationLimit;
use crate::tokens::jwt::VerifiedTokens;
use crate::tokens::password::PasswordVerifier;

/// How many verified JWTs introspection remembers (about 1 KiB each).
const VERIFIED_JWT_CACHE: usize = 4096;

/// Runs the server until SIGTERM or SIGINT, then lets requests in flight finish.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything else, so a SIGTERM that arrives during
    // start-up is a graceful stop rather than the default instant death.
    let shutdown = shutdown_signal()?;
    let store = open_store(&config).await.context("opening the database")?;
    store
        .refresh()
        .await
        .context("loading state from the database")?;
    store
        .ensure_signing_key(config.policy.signing_alg, clock::now())
        .await
        .context("preparing the signing key")?;

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let core = Arc::new(Core {
        store: store.clone(),
        policy: config.policy.clone(),
        passwords: PasswordVerifier::for_cores(cores),
        verified_jwts: VerifiedTokens::new(VERIFIED_JWT_CACHE),
        revocation_limit: RevocationLimit::new(config.revocations.per_client_per_second),
    });
    let service = TokenServiceImpl::new(Arc::clone(&core));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (available_tx, available_rx) = watch::channel(true);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(store.clone().sync_forever(available_tx, stop_rx.clone()));
    tokio::spawn(follow_database(reporter, available_rx));
    let metrics = Metrics::install();
    tokio::spawn(metrics.clone().upkeep_forever());
    if config.key_rotation_interval > 0 {
        tokio::spawn(store.clone().rotate_on_schedule(
            config.policy.signing_alg,
            config.key_rotation_interval,
            config.key_publish_delay,
            stop_rx.clone(),
        ));
    }

    let grpc_listener = bind(config.grpc_addr, "gRPC").await?;
    let http_listener = bind(config.http_addr, "HTTP").await?;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // v1 is the standard; v1alpha keeps older grpcurl and IDE clients working.
    let reflection_v1 = reflection().build_v1().context("building reflection")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building reflection")?;
    let grpc = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(TokenServiceServer::new(service.clone()))
        .serve_with_incoming_shutdown(
            crate::grpc::transport::incoming(grpc_listener),
            stopped(stop_rx.clone()),
        );

    // Small responses must leave at once: with Nagle's algorithm a response split
    // over two writes waits for the client's delayed ACK, about 40 ms.
    let http_listener = http_listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::warn!(error = %err, "cannot set TCP_NODELAY");
        }
    });
    let http = axum::serve(
        http_listener,
        crate::http::router(service, store, metrics, &config),
    )
    .with_graceful_shutdown(stopped(stop_rx));

    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    });

    let (grpc, http) = tokio::join!(grpc, http);
    grpc.context("gRPC server")?;
    http.context("HTTP server")?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))?;
    let bound = listener.local_addr()?;
    // Tests and scripts read this line to find a port chosen with port 0.
    tracing::info!("{what} listening on {bound}");
    Ok(listener)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let (mut terminate, mut interrupt) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
