//! One validated `Config`. A flag beats its `OAUTHD_*` variable, which beats the
//! TOML file named by `--config`, which beats the default (SPEC §2).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;

use crate::grpc::limits::{
    DEFAULT_TOKEN_SERVICE_MAX_MESSAGE_BYTES, MIN_TOKEN_SERVICE_MAX_MESSAGE_BYTES,
};
use crate::oauth::api_keys::DEFAULT_API_KEY_MAX_TTL;
use crate::oauth::authorize::DEFAULT_AUTHORIZATION_CODE_TTL;
use crate::oauth::client_address::TrustedProxies;
use crate::oauth::login_throttle::ThrottlePolicy;
use crate::oauth::sessions::DEFAULT_SESSION_TTL;
use crate::oauth::{Policy, TokenFormat};
use crate::store::DEFAULT_PURGE_INTERVAL_SECONDS;
use crate::tokens::keys::SigningAlg;
use crate::tokens::master_key::MasterKey;

/// Every setting, as flags and environment variables (clap) and as TOML keys
/// (serde). Each is optional here so that the sources can be layered.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// TOML file with settings (keys as the flags, with underscores).
    #[arg(long, env = "OAUTHD_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://FILE?mode=rwc or postgres://USER@HOST/DB.
    #[arg(long, env = "OAUTHD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Most database connections in the pool.
    #[arg(long, env = "OAUTHD_DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<u32>,
    /// Address of the HTTP shim; port 0 picks a free port.
    #[arg(long, env = "OAUTHD_HTTP_ADDR", global = true)]
    pub http_addr: Option<SocketAddr>,
    /// Address of the gRPC server; port 0 picks a free port.
    #[arg(long, env = "OAUTHD_GRPC_ADDR", global = true)]
    pub grpc_addr: Option<SocketAddr>,
    /// The issuer URL: `iss` of every token and base of the discovery document.
    #[arg(long, env = "OAUTHD_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// `aud` of every access token (default: the issuer).
    #[arg(long, env = "OAUTHD_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Access-token lifetime in seconds, unless the client sets its own.
    #[arg(long, env = "OAUTHD_ACCESS_TOKEN_TTL", global = true)]
    pub access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "OAUTHD_REFRESH_TOKEN_TTL", global = true)]
    pub refresh_token_ttl: Option<i64>,
    /// Seconds after its use in which a refresh token presented again by its
    /// client is refused without revoking its family (0: always revoke).
    #[arg(long, env = "OAUTHD_REFRESH_TOKEN_REUSE_GRACE", global = true)]
    pub refresh_token_reuse_grace: Option<i64>,
    /// Access-token format.
    #[arg(long, env = "OAUTHD_TOKEN_FORMAT", global = true, ignore_case = true)]
    pub token_format: Option<TokenFormatSetting>,
    /// JWT signing algorithm.
    #[arg(long, env = "OAUTHD_SIGNING_ALG", global = true, ignore_case = true)]
    pub signing_alg: Option<SigningAlgSetting>,
    /// Log format.
    #[arg(long, env = "OAUTHD_LOG_FORMAT", global = true, ignore_case = true)]
    pub log_format: Option<LogFormat>,
    /// Consecutive failed logins that lock a user (0: never).
    #[arg(long, env = "OAUTHD_MAX_FAILED_LOGINS", global = true)]
    pub max_failed_logins: Option<u32>,
    /// Base64 of 32 random bytes; encrypts private signing keys at rest.
    #[arg(long, env = "OAUTHD_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,
    /// Seconds a new key is published before it signs (`keys rotate`).
    #[arg(long, env = "OAUTHD_KEY_PUBLISH_DELAY", global = true)]
    pub key_publish_delay: Option<i64>,
    /// Rotate the signing key automatically after this many seconds (0: never).
    #[arg(long, env = "OAUTHD_KEY_ROTATION_INTERVAL", global = true)]
    pub key_rotation_interval: Option<i64>,
    /// Failed logins from one address within the window that ban it (0: no ban, no backoff).
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_MAX_FAILURES", global = true)]
    pub login_throttle_max_failures: Option<u32>,
    /// Seconds a count of failed logins lasts, from the first failure.
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_WINDOW", global = true)]
    pub login_throttle_window: Option<u64>,
    /// Seconds a banned address is refused.
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_BAN", global = true)]
    pub login_throttle_ban: Option<u64>,
    /// Seconds an address is refused after a failed login, doubled per further failure (0: none).
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_BACKOFF", global = true)]
    pub login_throttle_backoff: Option<u64>,
    /// Password checks one address may have in progress at once (0: no limit).
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_MAX_CONCURRENT", global = true)]
    pub login_throttle_max_concurrent: Option<u32>,
    /// Client addresses the login throttle remembers at most.
    #[arg(long, env = "OAUTHD_LOGIN_THROTTLE_ADDRESSES", global = true)]
    pub login_throttle_addresses: Option<usize>,
    /// Proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For names the client.
    #[arg(
        long,
        env = "OAUTHD_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,

    // Connections (both listeners); see `ConnectionLimits`.
    /// Most open connections per listener; past it new ones are closed at once.
    #[arg(long, env = "OAUTHD_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Seconds a connection may stay silent (nothing read) before it is closed.
    #[arg(long, env = "OAUTHD_IDLE_TIMEOUT", global = true)]
    pub idle_timeout: Option<u64>,
    /// Seconds a request may take from its complete head to its answer.
    #[arg(long, env = "OAUTHD_REQUEST_TIMEOUT", global = true)]
    pub request_timeout: Option<u64>,
    /// Seconds to drain after SIGTERM before the remaining connections are closed.
    #[arg(long, env = "OAUTHD_SHUTDOWN_GRACE", global = true)]
    pub shutdown_grace: Option<u64>,
    /// Seconds an HTTP/1 request head may take, counted from the wait for it.
    #[arg(long, env = "OAUTHD_HTTP_HEADER_TIMEOUT", global = true)]
    pub http_header_timeout: Option<u64>,
    /// Largest HTTP request head in bytes (at least 8192); also the read buffer.
    #[arg(long, env = "OAUTHD_HTTP_MAX_HEADER_BYTES", global = true)]
    pub http_max_header_bytes: Option<usize>,
    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, env = "OAUTHD_HTTP2_MAX_CONCURRENT_STREAMS", global = true)]
    pub http2_max_concurrent_streams: Option<u32>,
    /// HTTP/2 flow-control window in bytes, per stream and per connection.
    #[arg(long, env = "OAUTHD_HTTP2_WINDOW_BYTES", global = true)]
    pub http2_window_bytes: Option<u32>,
    /// Seconds of silence before an HTTP/2 keep-alive PING (0: no pings).
    #[arg(long, env = "OAUTHD_HTTP2_KEEPALIVE_INTERVAL", global = true)]
    pub http2_keepalive_interval: Option<u64>,
    /// Seconds to wait for a PING's acknowledgement before closing.
    #[arg(long, env = "OAUTHD_HTTP2_KEEPALIVE_TIMEOUT", global = true)]
    pub http2_keepalive_timeout: Option<u64>,
    /// Largest `TokenService` request message, in bytes; longer ones are refused
    /// from their length prefix, unread.
    #[arg(long, env = "OAUTHD_GRPC_MAX_MESSAGE_BYTES", global = true)]
    pub grpc_max_message_bytes: Option<usize>,
    /// Revocations that write, per client per second on each server (0: no bound).
    #[arg(long, env = "OAUTHD_REVOCATIONS_PER_SECOND", global = true)]
    pub revocations_per_second: Option<u32>,
    /// Longest lifetime `apikey create --expires-in` may give a key, seconds.
    #[arg(long, env = "OAUTHD_API_KEY_MAX_TTL", global = true)]
    pub api_key_max_ttl: Option<i64>,
    /// Seconds an authorization code stays redeemable.
    #[arg(long, env = "OAUTHD_AUTHORIZATION_CODE_TTL", global = true)]
    pub authorization_code_ttl: Option<i64>,
    /// Seconds a browser login session lasts.
    #[arg(long, env = "OAUTHD_SESSION_TTL", global = true)]
    pub session_ttl: Option<i64>,
    /// Directory of templates that replace the built-in login and consent pages, file by file.
    #[arg(long, env = "OAUTHD_TEMPLATE_DIR", global = true)]
    pub template_dir: Option<PathBuf>,
    /// Seconds between this server's purges of expired rows (0: never; `oauthd purge` still works).
    #[arg(long, env = "OAUTHD_PURGE_INTERVAL", global = true)]
    pub purge_interval: Option<u64>,

    // TLS (both listeners); see `TlsConfig`.
    /// PEM certificate chain for both listeners; with `--tls-key`, they speak TLS only.
    #[arg(long, env = "OAUTHD_TLS_CERT", global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "OAUTHD_TLS_KEY", global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate chain for the HTTP listener, instead of `--tls-cert`.
    #[arg(long, env = "OAUTHD_HTTP_TLS_CERT", global = true, value_name = "FILE")]
    pub http_tls_cert: Option<PathBuf>,
    /// PEM private key of `--http-tls-cert`.
    #[arg(long, env = "OAUTHD_HTTP_TLS_KEY", global = true, value_name = "FILE")]
    pub http_tls_key: Option<PathBuf>,
    /// PEM certificate chain for the gRPC listener, instead of `--tls-cert`.
    #[arg(long, env = "OAUTHD_GRPC_TLS_CERT", global = true, value_name = "FILE")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key of `--grpc-tls-cert`.
    #[arg(long, env = "OAUTHD_GRPC_TLS_KEY", global = true, value_name = "FILE")]
    pub grpc_tls_key: Option<PathBuf>,
    /// Address of a plaintext listener serving only gRPC health, for probes
    /// that cannot speak TLS (unset: none).
    #[arg(long, env = "OAUTHD_HEALTH_ADDR", global = true)]
    pub health_addr: Option<SocketAddr>,
}

/// `--token-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormatSetting {
    /// RFC 9068 JWTs.
    Jwt,
    /// Random values stored as hashes.
    Opaque,
}

/// `--signing-alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
pub enum SigningAlgSetting {
    /// ECDSA P-256 SHA-256.
    #[value(name = "ES256")]
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// RSA PKCS#1 v1.5 SHA-256.
    #[value(name = "RS256")]
    #[serde(rename = "RS256")]
    Rs256,
    /// HMAC SHA-256.
    #[value(name = "HS256")]
    #[serde(rename = "HS256")]
    Hs256,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Database URL.
    pub database_url: String,
    /// Pool size.
    pub database_max_connections: u32,
    /// HTTP address.
    pub http_addr: SocketAddr,
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// The master key, if configured.
    pub master_key: Option<Arc<MasterKey>>,
    /// Seconds a rotated-in key is published before it signs.
    pub key_publish_delay: i64,
    /// Seconds between automatic rotations; 0 turns them off.
    pub key_rotation_interval: i64,
    /// Largest `TokenService` request message, in bytes.
    pub grpc_max_message_bytes: usize,
    /// The protocol's settings.
    pub policy: Policy,
    /// Throttling failed logins by client address.
    pub login_throttle: LoginThrottleConfig,
    /// Limits on connections, both listeners.
    pub connections: ConnectionLimits,
    /// Bounds on revocations.
    pub revocations: RevocationSettings,
    /// The longest lifetime of an API key, seconds (SPEC §8).
    pub api_key_max_ttl: i64,
    /// Templates replacing the built-in pages (SPEC §7), if any.
    pub template_dir: Option<PathBuf>,
    /// Time between the janitor's purges (SPEC §10); zero turns it off.
    pub purge_interval: Duration,
    /// Which listeners speak TLS, with which files.
    pub tls: TlsConfig,
    /// The plaintext health-only listener's address, if any.
    pub health_addr: Option<SocketAddr>,
}

/// A certificate chain and its private key, as PEM files. Their contents are
/// read at start and again whenever they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key of the first certificate.
    pub key: PathBuf,
}

/// The TLS files of each listener; `None` leaves it plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// The HTTP listener's pair: `--http-tls-*`, else `--tls-*`.
    pub http: Option<TlsFiles>,
    /// The gRPC listener's pair: `--grpc-tls-*`, else `--tls-*`.
    pub grpc: Option<TlsFiles>,
}

impl TlsConfig {
    fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let shared = tls_pair(
            ("tls_cert", s.tls_cert.clone()),
            ("tls_key", s.tls_key.clone()),
        )?;
        let http = tls_pair(
            ("http_tls_cert", s.http_tls_cert.clone()),
            ("http_tls_key", s.http_tls_key.clone()),
        )?;
        let grpc = tls_pair(
            ("grpc_tls_cert", s.grpc_tls_cert.clone()),
            ("grpc_tls_key", s.grpc_tls_key.clone()),
        )?;
        Ok(Self {
            http: http.or_else(|| shared.clone()),
            grpc: grpc.or(shared),
        })
    }
}

/// Both halves of a pair, or neither: a certificate without its key (or the
/// reverse) is a mistake to report, not a reason to serve plaintext.
fn tls_pair(
    (cert_name, cert): (&'static str, Option<PathBuf>),
    (key_name, key): (&'static str, Option<PathBuf>),
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Invalid {
            name: key_name,
            message: format!("{cert_name} is set without {key_name}: give both or neither"),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            name: cert_name,
            message: format!("{key_name} is set without {cert_name}: give both or neither"),
        }),
    }
}

/// Throttling failed logins by client address, and where that address comes from.
#[derive(Debug, Clone)]
pub struct LoginThrottleConfig {
    /// The throttle's policy.
    pub policy: ThrottlePolicy,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

impl LoginThrottleConfig {
    fn load(s: &Settings) -> Result<Self, ConfigError> {
        let defaults = ThrottlePolicy::default();
        let seconds = |name: &'static str, value: Option<u64>, default: Duration| match value {
            None => Ok(default),
            Some(0) => Err(ConfigError::Invalid {
                name,
                message: "must be a positive number of seconds, got 0".to_owned(),
            }),
            Some(secs) => Ok(Duration::from_secs(secs)),
        };
        let policy = ThrottlePolicy {
            max_failures: s
                .login_throttle_max_failures
                .unwrap_or(defaults.max_failures),
            window: seconds(
                "login_throttle_window",
                s.login_throttle_window,
                defaults.window,
            )?,
            ban: seconds("login_throttle_ban", s.login_throttle_ban, defaults.ban)?,
            backoff: s
                .login_throttle_backoff
                .map_or(defaults.backoff, Duration::from_secs),
            max_concurrent: s
                .login_throttle_max_concurrent
                .unwrap_or(defaults.max_concurrent),
            capacity: s
                .login_throttle_addresses
                .unwrap_or(defaults.capacity)
                .max(1),
        };
        let trusted_proxies = TrustedProxies::parse(s.trusted_proxies.as_deref().unwrap_or(&[]))
            .map_err(|message| ConfigError::Invalid {
                name: "trusted_proxies",
                message,
            })?;
        Ok(Self {
            policy,
            trusted_proxies,
        })
    }
}

/// The limits both listeners put on their connections (README, "Connections
/// and limits"). Durations are whole seconds in the settings.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections per listener.
    pub max_connections: usize,
    /// A connection from which nothing was read for this long is closed.
    pub idle_timeout: Duration,
    /// From a request's complete head to its answer, body reading included.
    pub request_timeout: Duration,
    /// How long SIGTERM waits for connections to finish.
    pub shutdown_grace: Duration,
    /// HTTP/1: the wait for a request head, keep-alive idle time included.
    pub http_header_timeout: Duration,
    /// HTTP/1 read buffer and largest head; HTTP/2 header list on the HTTP port.
    pub http_max_header_bytes: usize,
    /// HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 initial stream and connection windows.
    pub http2_window_bytes: u32,
    /// HTTP/2 keep-alive PING interval; `None` sends none.
    pub http2_keepalive_interval: Option<Duration>,
    /// HTTP/2 wait for a PING's acknowledgement.
    pub http2_keepalive_timeout: Duration,
}

/// The longest any connection timeout may be: a day.
const MAX_LIMIT_SECONDS: u64 = 86_400;

/// More connections per listener than any descriptor limit allows.
const MAX_CONNECTIONS: usize = 1 << 22;

/// hyper refuses a smaller HTTP/1 buffer.
const MIN_HTTP_HEADER_BYTES: usize = 8192;

/// The default largest request head: what reverse proxies forward to a
/// forward-auth check (nginx's default buffers hold 32 KiB of head, Envoy's
/// 60 KiB), so a request with large cookies is not refused at the check. An
/// HTTP/1 connection's buffer then holds less than an HTTP/2 connection's
/// window plus state, which bounds the memory per connection anyway.
const DEFAULT_HTTP_MAX_HEADER_BYTES: usize = 64 * 1024;

/// RFC 9113 §6.5.2: no window may exceed 2^31 - 1.
const MAX_HTTP2_WINDOW: u32 = (1 << 31) - 1;

impl ConnectionLimits {
    fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        // Deadlines are instants computed by addition: a bound keeps it from
        // overflowing.
        let seconds = |name: &'static str, value: Option<u64>, default: u64| {
            let value = value.unwrap_or(default);
            if !(1..=MAX_LIMIT_SECONDS).contains(&value) {
                return Err(ConfigError::Invalid {
                    name,
                    message: format!(
                        "must be between 1 and {MAX_LIMIT_SECONDS} seconds, got {value}"
                    ),
                });
            }
            Ok(Duration::from_secs(value))
        };
        let limits = Self {
            max_connections: s.max_connections.unwrap_or(512),
            idle_timeout: seconds("idle_timeout", s.idle_timeout, 60)?,
            request_timeout: seconds("request_timeout", s.request_timeout, 10)?,
            shutdown_grace: seconds("shutdown_grace", s.shutdown_grace, 20)?,
            http_header_timeout: seconds("http_header_timeout", s.http_header_timeout, 30)?,
            http_max_header_bytes: s
                .http_max_header_bytes
                .unwrap_or(DEFAULT_HTTP_MAX_HEADER_BYTES),
            http2_max_concurrent_streams: s.http2_max_concurrent_streams.unwrap_or(100),
            http2_window_bytes: s.http2_window_bytes.unwrap_or(65_535),
            http2_keepalive_interval: match s.http2_keepalive_interval.unwrap_or(30) {
                0 => None,
                interval => Some(seconds("http2_keepalive_interval", Some(interval), 30)?),
            },
            http2_keepalive_timeout: seconds(
                "http2_keepalive_timeout",
                s.http2_keepalive_timeout,
                20,
            )?,
        };
        let invalid = |name, message: String| Err(ConfigError::Invalid { name, message });
        if !(1..=MAX_CONNECTIONS).contains(&limits.max_connections) {
            return invalid(
                "max_connections",
                format!("must be between 1 and {MAX_CONNECTIONS}"),
            );
        }
        if limits.http_max_header_bytes < MIN_HTTP_HEADER_BYTES {
            return invalid(
                "http_max_header_bytes",
                format!("must be at least {MIN_HTTP_HEADER_BYTES}"),
            );
        }
        if limits.http2_max_concurrent_streams == 0 {
            return invalid(
                "http2_max_concurrent_streams",
                "must be at least 1".to_owned(),
            );
        }
        if !(65_535..=MAX_HTTP2_WINDOW).contains(&limits.http2_window_bytes) {
            return invalid(
                "http2_window_bytes",
                format!("must be between 65535 and {MAX_HTTP2_WINDOW}"),
            );
        }
        // A connection is silent while its request runs, and between the
        // keep-alive PINGs that keep a healthy idle client talking.
        if limits.idle_timeout <= limits.request_timeout {
            return invalid(
                "idle_timeout",
                "must be longer than request_timeout".to_owned(),
            );
        }
        if limits
            .http2_keepalive_interval
            .is_some_and(|interval| limits.idle_timeout <= interval)
        {
            return invalid(
                "idle_timeout",
                "must be longer than http2_keepalive_interval".to_owned(),
            );
        }
        Ok(limits)
    }
}

/// Bounds on revocations (issue 11): each one that writes reaches every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationSettings {
    /// Revocations that write, per client per second on each server; 0: none.
    pub per_client_per_second: u32,
}

impl RevocationSettings {
    /// The default bound, `--revocations-per-second`.
    pub const DEFAULT_PER_CLIENT_PER_SECOND: u32 = 10;
}

impl Config {
    /// Layers the settings (flags and environment already merged by clap) over the
    /// TOML file and the defaults, and validates the result.
    pub fn load(cli: &Settings) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<Settings>(&text).map_err(|err| ConfigError::Parse {
                    path: path.clone(),
                    message: err.message().to_owned(),
                })?
            }
            None => Settings::default(),
        };
        let s = cli.clone().over(file);
        let login_throttle = LoginThrottleConfig::load(&s)?;
        let connections = ConnectionLimits::from_settings(&s)?;
        let tls = TlsConfig::from_settings(&s)?;
        let issuer = s
            .issuer
            .unwrap_or_else(|| "http://localhost:3030".to_owned());
        let issuer = issuer.trim_end_matches('/').to_owned();
        let access_token_ttl = positive("access_token_ttl", s.access_token_ttl.unwrap_or(3600))?;
        let refresh_token_ttl = positive(
            "refresh_token_ttl",
            s.refresh_token_ttl.unwrap_or(2_592_000),
        )?;
        let refresh_token_reuse_grace =
            reuse_grace(s.refresh_token_reuse_grace.unwrap_or(0), refresh_token_ttl)?;
        let master_key = s
            .master_key
            .filter(|key| !key.is_empty())
            .map(|key| MasterKey::from_base64(&key).map(Arc::new))
            .transpose()
            .map_err(|err| ConfigError::Invalid {
                name: "master_key",
                message: err.to_string(),
            })?;
        let api_key_max_ttl = positive(
            "api_key_max_ttl",
            s.api_key_max_ttl.unwrap_or(DEFAULT_API_KEY_MAX_TTL),
        )?;
        let authorization_code_ttl = positive(
            "authorization_code_ttl",
            s.authorization_code_ttl
                .unwrap_or(DEFAULT_AUTHORIZATION_CODE_TTL),
        )?;
        let session_ttl = positive("session_ttl", s.session_ttl.unwrap_or(DEFAULT_SESSION_TTL))?;
        let grpc_max_message_bytes = s
            .grpc_max_message_bytes
            .unwrap_or(DEFAULT_TOKEN_SERVICE_MAX_MESSAGE_BYTES);
        if grpc_max_message_bytes < MIN_TOKEN_SERVICE_MAX_MESSAGE_BYTES {
            return Err(ConfigError::Invalid {
                name: "grpc_max_message_bytes",
                message: format!(
                    "must be at least {MIN_TOKEN_SERVICE_MAX_MESSAGE_BYTES}, got {grpc_max_message_bytes}"
                ),
            });
        }
        Ok(Self {
            connections,
            database_url: s
                .database_url
                .unwrap_or_else(|| "sqlite://oauthd.db?mode=rwc".to_owned()),
            database_max_connections: s.database_max_connections.unwrap_or(10).max(2),
            http_addr: s
                .http_addr
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 3030))),
            grpc_addr: s
                .grpc_addr
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 50051))),
            log_format: s.log_format.unwrap_or(LogFormat::Text),
            master_key,
            key_publish_delay: s.key_publish_delay.unwrap_or(5).max(0),
            key_rotation_interval: s.key_rotation_interval.unwrap_or(0).max(0),
            grpc_max_message_bytes,
            policy: Policy {
                audience: s.audience.unwrap_or_else(|| issuer.clone()),
                issuer,
                access_token_ttl,
                refresh_token_ttl,
                refresh_token_reuse_grace,
                token_format: match s.token_format.unwrap_or(TokenFormatSetting::Jwt) {
                    TokenFormatSetting::Jwt => TokenFormat::Jwt,
                    TokenFormatSetting::Opaque => TokenFormat::Opaque,
                },
                signing_alg: match s.signing_alg.unwrap_or(SigningAlgSetting::Es256) {
                    SigningAlgSetting::Es256 => SigningAlg::Es256,
                    SigningAlgSetting::EdDsa => SigningAlg::EdDsa,
                    SigningAlgSetting::Rs256 => SigningAlg::Rs256,
                    SigningAlgSetting::Hs256 => SigningAlg::Hs256,
                },
                lock_after_failed_logins: s.max_failed_logins.unwrap_or(5),
                authorization_code_ttl,
                session_ttl,
            },
            login_throttle,
            revocations: RevocationSettings {
                per_client_per_second: s
                    .revocations_per_second
                    .unwrap_or(RevocationSettings::DEFAULT_PER_CLIENT_PER_SECOND),
            },
            api_key_max_ttl,
            template_dir: s.template_dir,
            purge_interval: Duration::from_secs(
                s.purge_interval.unwrap_or(DEFAULT_PURGE_INTERVAL_SECONDS),
            ),
            tls,
            health_addr: s.health_addr,
        })
    }
}

impl Settings {
    /// `self` where set, else `lower`.
    fn over(self, lower: Settings) -> Settings {
        Settings {
            config: self.config,
            database_url: self.database_url.or(lower.database_url),
            database_max_connections: self
                .database_max_connections
                .or(lower.database_max_connections),
            http_addr: self.http_addr.or(lower.http_addr),
            grpc_addr: self.grpc_addr.or(lower.grpc_addr),
            issuer: self.issuer.or(lower.issuer),
            audience: self.audience.or(lower.audience),
            access_token_ttl: self.access_token_ttl.or(lower.access_token_ttl),
            refresh_token_ttl: self.refresh_token_ttl.or(lower.refresh_token_ttl),
            refresh_token_reuse_grace: self
                .refresh_token_reuse_grace
                .or(lower.refresh_token_reuse_grace),
            token_format: self.token_format.or(lower.token_format),
            signing_alg: self.signing_alg.or(lower.signing_alg),
            log_format: self.log_format.or(lower.log_format),
            max_failed_logins: self.max_failed_logins.or(lower.max_failed_logins),
            master_key: self.master_key.or(lower.master_key),
            key_publish_delay: self.key_publish_delay.or(lower.key_publish_delay),
            key_rotation_interval: self.key_rotation_interval.or(lower.key_rotation_interval),
            login_throttle_max_failures: self
                .login_throttle_max_failures
                .or(lower.login_throttle_max_failures),
            login_throttle_window: self.login_throttle_window.or(lower.login_throttle_window),
            login_throttle_ban: self.login_throttle_ban.or(lower.login_throttle_ban),
            login_throttle_backoff: self.login_throttle_backoff.or(lower.login_throttle_backoff),
            login_throttle_max_concurrent: self
                .login_throttle_max_concurrent
                .or(lower.login_throttle_max_concurrent),
            login_throttle_addresses: self
                .login_throttle_addresses
                .or(lower.login_throttle_addresses),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            max_connections: self.max_connections.or(lower.max_connections),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            shutdown_grace: self.shutdown_grace.or(lower.shutdown_grace),
            http_header_timeout: self.http_header_timeout.or(lower.http_header_timeout),
            http_max_header_bytes: self.http_max_header_bytes.or(lower.http_max_header_bytes),
            http2_max_concurrent_streams: self
                .http2_max_concurrent_streams
                .or(lower.http2_max_concurrent_streams),
            http2_window_bytes: self.http2_window_bytes.or(lower.http2_window_bytes),
            http2_keepalive_interval: self
                .http2_keepalive_interval
                .or(lower.http2_keepalive_interval),
            http2_keepalive_timeout: self
                .http2_keepalive_timeout
                .or(lower.http2_keepalive_timeout),
            grpc_max_message_bytes: self.grpc_max_message_bytes.or(lower.grpc_max_message_bytes),
            revocations_per_second: self.revocations_per_second.or(lower.revocations_per_second),
            api_key_max_ttl: self.api_key_max_ttl.or(lower.api_key_max_ttl),
            authorization_code_ttl: self.authorization_code_ttl.or(lower.authorization_code_ttl),
            session_ttl: self.session_ttl.or(lower.session_ttl),
            template_dir: self.template_dir.or(lower.template_dir),
            purge_interval: self.purge_interval.or(lower.purge_interval),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            http_tls_cert: self.http_tls_cert.or(lower.http_tls_cert),
            http_tls_key: self.http_tls_key.or(lower.http_tls_key),
            grpc_tls_cert: self.grpc_tls_cert.or(lower.grpc_tls_cert),
            grpc_tls_key: self.grpc_tls_key.or(lower.grpc_tls_key),
            health_addr: self.health_addr.or(lower.health_addr),
        }
    }
}

fn positive(name: &'static str, value: i64) -> Result<i64, ConfigError> {
    if value > 0 {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            message: format!("must be a positive number of seconds, got {value}"),
        })
    }
}

/// `--refresh-token-reuse-grace`: from 0 (off) up to the refresh-token
/// lifetime. A longer window would spare replays of tokens long expired, and
/// is more likely a mistyped unit than a wish.
fn reuse_grace(value: i64, refresh_token_ttl: i64) -> Result<i64, ConfigError> {
    if (0..=refresh_token_ttl).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: "refresh_token_reuse_grace",
            message: format!(
                "must be a number of seconds from 0 to refresh_token_ttl ({refresh_token_ttl}), got {value}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(
            &path,
            "issuer = \"https://file.example\"\naccess_token_ttl = 60\nsigning_alg = \"EdDSA\"\n",
        )
        .unwrap();
        let cli = Settings {
            config: Some(path),
            access_token_ttl: Some(120),
            ..Settings::default()
        };
        let config = Config::load(&cli).unwrap();
        assert_eq!(config.policy.issuer, "https://file.example");
        assert_eq!(config.policy.access_token_ttl, 120);
        assert_eq!(config.policy.signing_alg, SigningAlg::EdDsa);
        assert_eq!(config.policy.refresh_token_ttl, 2_592_000);
    }

    #[test]
    fn login_throttle_settings_have_defaults_and_read_the_file() {
        let config = Config::load(&Settings::default()).unwrap();
        assert_eq!(config.login_throttle.policy, ThrottlePolicy::default());
        assert!(config.login_throttle.trusted_proxies.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(
            &path,
            "login_throttle_ban = 60\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        let cli = Settings {
            config: Some(path),
            login_throttle_max_failures: Some(7),
            ..Settings::default()
        };
        let throttle = Config::load(&cli).unwrap().login_throttle;
        assert_eq!(throttle.policy.ban, Duration::from_secs(60));
        assert_eq!(throttle.policy.max_failures, 7);
        assert!(
            throttle
                .trusted_proxies
                .contains("10.1.2.3".parse().unwrap())
        );
        assert!(throttle.trusted_proxies.contains("::1".parse().unwrap()));
    }

    #[test]
    fn bad_login_throttle_settings_are_refused() {
        for settings in [
            Settings {
                trusted_proxies: Some(vec!["10.0.0.0/40".into()]),
                ..Settings::default()
            },
            Settings {
                login_throttle_window: Some(0),
                ..Settings::default()
            },
        ] {
            assert!(matches!(
                Config::load(&settings),
                Err(ConfigError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn the_grpc_message_limit_defaults_to_the_shims_and_refuses_tiny_values() {
        let config = Config::load(&Settings::default()).unwrap();
        assert_eq!(config.grpc_max_message_bytes, 64 * 1024);
        let tiny = Settings {
            grpc_max_message_bytes: Some(100),
            ..Settings::default()
        };
        assert!(matches!(
            Config::load(&tiny),
            Err(ConfigError::Invalid {
                name: "grpc_max_message_bytes",
                ..
            })
        ));
    }

    #[test]
    fn the_revocation_bound_layers_like_every_setting() {
        assert_eq!(
            Config::load(&Settings::default())
                .unwrap()
                .revocations
                .per_client_per_second,
            RevocationSettings::DEFAULT_PER_CLIENT_PER_SECOND
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(&path, "revocations_per_second = 3\n").unwrap();
        let from_file = Settings {
            config: Some(path),
            ..Settings::default()
        };
        let config = Config::load(&from_file).unwrap();
        assert_eq!(config.revocations.per_client_per_second, 3);
        let flag = Settings {
            revocations_per_second: Some(0),
            ..from_file
        };
        assert_eq!(
            Config::load(&flag)
                .unwrap()
                .revocations
                .per_client_per_second,
            0
        );
    }

    #[test]
    fn the_api_key_max_ttl_defaults_to_a_year_layers_and_must_be_positive() {
        let config = Config::load(&Settings::default()).unwrap();
        assert_eq!(config.api_key_max_ttl, 31_536_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(&path, "api_key_max_ttl = 86400\n").unwrap();
        let from_file = Settings {
            config: Some(path),
            ..Settings::default()
        };
        assert_eq!(Config::load(&from_file).unwrap().api_key_max_ttl, 86_400);
        let flag = Settings {
            api_key_max_ttl: Some(3600),
            ..from_file.clone()
        };
        assert_eq!(Config::load(&flag).unwrap().api_key_max_ttl, 3600);
        for bad in [0, -1] {
            let settings = Settings {
                api_key_max_ttl: Some(bad),
                ..from_file.clone()
            };
            assert!(matches!(
                Config::load(&settings),
                Err(ConfigError::Invalid {
                    name: "api_key_max_ttl",
                    ..
                })
            ));
        }
    }

    #[test]
    fn the_refresh_reuse_grace_is_off_by_default_layers_and_stays_within_the_ttl() {
        let config = Config::load(&Settings::default()).unwrap();
        assert_eq!(config.policy.refresh_token_reuse_grace, 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(
            &path,
            "refresh_token_reuse_grace = 10\nrefresh_token_ttl = 60\n",
        )
        .unwrap();
        let from_file = Settings {
            config: Some(path),
            ..Settings::default()
        };
        let config = Config::load(&from_file).unwrap();
        assert_eq!(config.policy.refresh_token_reuse_grace, 10);
        for (flag, loaded) in [(0, Some(0)), (60, Some(60)), (61, None), (-1, None)] {
            let settings = Settings {
                refresh_token_reuse_grace: Some(flag),
                ..from_file.clone()
            };
            match (Config::load(&settings), loaded) {
                (Ok(config), Some(grace)) => {
                    assert_eq!(config.policy.refresh_token_reuse_grace, grace);
                }
                (Err(ConfigError::Invalid { name, message }), None) => {
                    assert_eq!(name, "refresh_token_reuse_grace");
                    assert_eq!(
                        message,
                        format!(
                            "must be a number of seconds from 0 to refresh_token_ttl (60), got {flag}"
                        )
                    );
                }
                (other, _) => panic!("grace {flag}: {other:?}"),
            }
        }
    }

    #[test]
    fn tls_pairs_layer_and_a_listeners_own_pair_beats_the_shared_one() {
        assert_eq!(
            Config::load(&Settings::default()).unwrap().tls,
            TlsConfig::default()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(
            &path,
            "tls_cert = \"/s/tls.crt\"\ngrpc_tls_key = \"/g/tls.key\"\nhealth_addr = \"127.0.0.1:8081\"\n",
        )
        .unwrap();
        let cli = Settings {
            config: Some(path),
            tls_key: Some("/s/tls.key".into()),
            grpc_tls_cert: Some("/g/tls.crt".into()),
            ..Settings::default()
        };
        let config = Config::load(&cli).unwrap();
        let files = |dir: &str| TlsFiles {
            cert: format!("/{dir}/tls.crt").into(),
            key: format!("/{dir}/tls.key").into(),
        };
        assert_eq!(config.tls.http, Some(files("s")));
        assert_eq!(config.tls.grpc, Some(files("g")));
        assert_eq!(config.health_addr, Some("127.0.0.1:8081".parse().unwrap()));
    }

    #[test]
    fn half_a_tls_pair_is_refused_by_the_name_of_the_missing_half() {
        for (settings, missing) in [
            (
                Settings {
                    tls_cert: Some("/tls.crt".into()),
                    ..Settings::default()
                },
                "tls_key",
            ),
            (
                Settings {
                    http_tls_key: Some("/tls.key".into()),
                    tls_cert: Some("/tls.crt".into()),
                    tls_key: Some("/tls.key".into()),
                    ..Settings::default()
                },
                "http_tls_cert",
            ),
        ] {
            match Config::load(&settings) {
                Err(ConfigError::Invalid { name, message }) => {
                    assert_eq!(name, missing);
                    assert!(message.ends_with("give both or neither"), "{message}");
                }
                other => panic!("{missing}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(&path, "isuer = \"typo\"\n").unwrap();
        let cli = Settings {
            config: Some(path),
            ..Settings::default()
        };
        assert!(matches!(Config::load(&cli), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn connection_limits_have_defaults_and_come_from_the_file() {
        let defaults = Config::load(&Settings::default()).unwrap().connections;
        assert_eq!(defaults.max_connections, 512);
        assert_eq!(defaults.idle_timeout, Duration::from_secs(60));
        assert_eq!(defaults.shutdown_grace, Duration::from_secs(20));
        assert_eq!(defaults.http_max_header_bytes, 64 * 1024);
        assert_eq!(
            defaults.http2_keepalive_interval,
            Some(Duration::from_secs(30))
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.toml");
        std::fs::write(
            &path,
            "max_connections = 64\nhttp2_keepalive_interval = 0\nidle_timeout = 15\n",
        )
        .unwrap();
        let cli = Settings {
            config: Some(path),
            idle_timeout: Some(12),
            ..Settings::default()
        };
        let limits = Config::load(&cli).unwrap().connections;
        assert_eq!(limits.max_connections, 64);
        assert_eq!(limits.http2_keepalive_interval, None);
        assert_eq!(limits.idle_timeout, Duration::from_secs(12));
    }

    #[test]
    fn an_idle_timeout_no_longer_than_a_request_is_refused() {
        let cli = Settings {
            idle_timeout: Some(10),
            request_timeout: Some(10),
            http2_keepalive_interval: Some(0),
            ..Settings::default()
        };
        assert!(matches!(
            Config::load(&cli),
            Err(ConfigError::Invalid {
                name: "idle_timeout",
                ..
            })
        ));
    }
}
