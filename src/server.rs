//! `oauthd serve`: bind (port 0 aware), log the bound addresses, serve gRPC and
//! HTTP from one process, in TLS where configured (and plaintext gRPC health on
//! its own port, if asked for), and shut down gracefully on SIGTERM or SIGINT,
//! within the drain deadline.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::open_store;
use crate::clock;
use crate::config::{Config, ConnectionLimits};
use crate::connections::{Slots, raise_open_file_limit};
use crate::grpc::ext_authz::ExtAuthzImpl;
use crate::grpc::health::follow_database;
use crate::grpc::limits::{self as message_limits, REFLECTION_MAX_MESSAGE_BYTES};
use crate::grpc::pb;
use crate::grpc::token_service::TokenServiceImpl;
use crate::http::{Metrics, ShimSettings};
use crate::oauth::Core;
use crate::oauth::login_throttle::LoginThrottle;
use crate::oauth::revocation_limit::RevocationLimit;
use crate::tls::{ListenerTls, ServerTls};
use crate::tokens::jwt::VerifiedTokens;
use crate::tokens::password::PasswordVerifier;

/// How many verified JWTs introspection remembers (about 1 KiB each).
const VERIFIED_JWT_CACHE: usize = 4096;

/// Descriptors kept free of both connection caps, besides the database pool:
/// the listening sockets, log output, SQLite's files, the runtime's own.
const SPARE_DESCRIPTORS: usize = 64;

/// Runs the server until SIGTERM or SIGINT, then lets requests in flight finish
/// for up to `--shutdown-grace` and closes whatever is still open.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything else, so a SIGTERM that arrives during
    // start-up is a graceful stop rather than the default instant death.
    let shutdown = shutdown_signal()?;
    // Templates are read before anything else is opened, so that a broken
    // one in `--template-dir` stops the start with its name. Reading files
    // here blocks this thread briefly, before anything is served.
    let shim_settings = ShimSettings::from_config(&config).context("loading the page templates")?;
    // Certificates too, before the database: a wrong path or a key that does
    // not match is a start-up error that names the file. A handshake gets as
    // long as a silent connection is allowed to live.
    let tls = ServerTls::load(&config.tls, config.connections.idle_timeout)
        .await
        .context("loading the TLS certificates")?;
    let store = open_store(&config).await.context("opening the database")?;
    store
        .sync_now()
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
        passwords: PasswordVerifier::for_cores(cores).context("preparing password checks")?,
        verified_jwts: VerifiedTokens::new(VERIFIED_JWT_CACHE),
        login_throttle: LoginThrottle::new(config.login_throttle.policy),
        revocation_limit: RevocationLimit::new(config.revocations.per_client_per_second),
    });
    let ext_authz = ExtAuthzImpl::new(Arc::clone(&core));
    let service = TokenServiceImpl::new(Arc::clone(&core))
        .with_trusted_proxies(config.login_throttle.trusted_proxies.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (available_tx, available_rx) = watch::channel(true);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(store.clone().sync_forever(available_tx, stop_rx.clone()));
    tokio::spawn(store.clone().write_key_uses_forever(stop_rx.clone()));
    tokio::spawn(follow_database(reporter, available_rx));
    let metrics = Metrics::install();
    tokio::spawn(metrics.clone().upkeep_forever());
    let http_tls = tls.http.map(ListenerTls::spawn_reloads);
    let grpc_tls = tls.grpc.map(ListenerTls::spawn_reloads);
    if !config.purge_interval.is_zero() {
        tokio::spawn(
            store
                .clone()
                .purge_forever(config.purge_interval, stop_rx.clone()),
        );
    }
    if config.key_rotation_interval > 0 {
        tokio::spawn(store.clone().rotate_on_schedule(
            config.policy.signing_alg,
            config.key_rotation_interval,
            config.key_publish_delay,
            stop_rx.clone(),
        ));
    }

    let limits = &config.connections;
    let cap = connection_cap(
        limits.max_connections,
        1 + 1 + usize::from(config.health_addr.is_some()),
        raise_open_file_limit(),
        SPARE_DESCRIPTORS + config.database_max_connections as usize,
    );
    let (grpc_slots, http_slots) = (Slots::new(cap), Slots::new(cap));
    // Bound first, so that its address is in the log before the main ports'.
    let health_listener = match config.health_addr {
        Some(addr) => Some(bind(addr, "health").await?),
        None => None,
    };
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
    // Probes from a kubelet, which speaks no TLS to a gRPC probe: the same
    // health service on a plaintext port of its own, and nothing else there.
    let health_only = health_listener.map(|listener| {
        grpc_server(limits)
            .add_service(message_limits::health(health_service.clone()))
            .serve_with_incoming_shutdown(
                crate::grpc::transport::incoming(
                    listener,
                    Slots::new(cap),
                    limits.idle_timeout,
                    "health",
                ),
                stopped(stop_rx.clone()),
            )
    });
    let grpc_routes = grpc_server(limits)
        .add_service(message_limits::health(health_service))
        .add_service(reflection_v1.max_decoding_message_size(REFLECTION_MAX_MESSAGE_BYTES))
        .add_service(reflection_v1alpha.max_decoding_message_size(REFLECTION_MAX_MESSAGE_BYTES))
        .add_service(message_limits::token_service(
            service.clone(),
            config.grpc_max_message_bytes,
        ))
        .add_service(message_limits::ext_authz(ext_authz));
    // The two kinds of connection are two types, hence two futures: boxed
    // once, for the life of the server.
    let grpc: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match grpc_tls {
            None => Box::pin(grpc_routes.serve_with_incoming_shutdown(
                crate::grpc::transport::incoming(
                    grpc_listener,
                    grpc_slots.clone(),
                    limits.idle_timeout,
                    "grpc",
                ),
                stopped(stop_rx.clone()),
            )),
            Some(handshaker) => Box::pin(grpc_routes.serve_with_incoming_shutdown(
                crate::grpc::transport::tls_incoming(
                    grpc_listener,
                    grpc_slots.clone(),
                    limits.idle_timeout,
                    handshaker,
                ),
                stopped(stop_rx.clone()),
            )),
        };
    let http = crate::http::serve(
        http_listener,
        http_slots.clone(),
        crate::http::router(service, metrics, shim_settings),
        limits,
        http_tls,
        stopped(stop_rx.clone()),
    );

    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    });

    let health_only = async {
        match health_only {
            Some(server) => server.await,
            None => Ok(()),
        }
    };
    let served = async {
        let (grpc, (), health) = tokio::join!(grpc, http, health_only);
        grpc.and(health)
    };
    let drain_deadline = async {
        stopped(stop_rx).await;
        tokio::time::sleep(limits.shutdown_grace).await;
    };
    tokio::select! {
        grpc = served => {
            grpc.context("gRPC server")?;
            tracing::info!("stopped");
        }
        () = drain_deadline => {
            // Returning drops the runtime, and with it every connection left.
            tracing::warn!(
                http = http_slots.open(),
                grpc = grpc_slots.open(),
                "drain deadline passed: closing the connections still open"
            );
        }
    }
    // Requests served while draining noted uses of API keys after the
    // writer's last round; they are written now, before the process ends.
    store.write_key_uses().await;
    Ok(())
}

/// The tonic server with the connection limits that apply to gRPC.
fn grpc_server(limits: &ConnectionLimits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .initial_stream_window_size(limits.http2_window_bytes)
        .initial_connection_window_size(limits.http2_window_bytes)
        .http2_keepalive_interval(limits.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
}

/// The cap each listener gets: `wanted`, unless `listeners` of them and
/// `spare` would not fit in the open-file limit, in which case what fits (and
/// a warning).
fn connection_cap(wanted: usize, listeners: usize, file_limit: Option<u64>, spare: usize) -> usize {
    let Some(limit) = file_limit.and_then(|limit| usize::try_from(limit).ok()) else {
        return wanted;
    };
    let fits = limit.saturating_sub(spare) / listeners.max(1);
    if wanted <= fits {
        return wanted;
    }
    let cap = fits.max(1);
    tracing::warn!(
        wanted,
        cap,
        open_file_limit = limit,
        "max_connections lowered to fit the open-file limit"
    );
    cap
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

#[cfg(test)]
mod tests {
    use super::connection_cap;

    #[test]
    fn both_caps_leave_room_for_the_spare_descriptors() {
        assert_eq!(connection_cap(512, 2, Some(1_048_576), 74), 512);
        assert_eq!(connection_cap(512, 2, None, 74), 512);
        // The default soft limit when the hard one is no higher.
        assert_eq!(connection_cap(512, 2, Some(1024), 74), 475);
        assert_eq!(connection_cap(512, 2, Some(10), 74), 1);
        // With the health-only listener, three share the limit.
        assert_eq!(connection_cap(512, 3, Some(1024), 74), 316);
    }
}
