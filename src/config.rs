//! One validated `Config`. A flag beats its `OAUTHD_*` variable, which beats the
//! TOML file named by `--config`, which beats the default (SPEC §2).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use serde::Deserialize;

use crate::oauth::{Policy, TokenFormat};
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
    /// Revocations that write, per client per second on each server (0: no bound).
    #[arg(long, env = "OAUTHD_REVOCATIONS_PER_SECOND", global = true)]
    pub revocations_per_second: Option<u32>,
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
    /// The protocol's settings.
    pub policy: Policy,
    /// Bounds on revocations.
    pub revocations: RevocationSettings,
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
        let issuer = s
            .issuer
            .unwrap_or_else(|| "http://localhost:3030".to_owned());
        let issuer = issuer.trim_end_matches('/').to_owned();
        let access_token_ttl = positive("access_token_ttl", s.access_token_ttl.unwrap_or(3600))?;
        let refresh_token_ttl = positive(
            "refresh_token_ttl",
            s.refresh_token_ttl.unwrap_or(2_592_000),
        )?;
        let master_key = s
            .master_key
            .filter(|key| !key.is_empty())
            .map(|key| MasterKey::from_base64(&key).map(Arc::new))
            .transpose()
            .map_err(|err| ConfigError::Invalid {
                name: "master_key",
                message: err.to_string(),
            })?;
        Ok(Self {
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
            policy: Policy {
                audience: s.audience.unwrap_or_else(|| issuer.clone()),
                issuer,
                access_token_ttl,
                refresh_token_ttl,
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
            },
            revocations: RevocationSettings {
                per_client_per_second: s
                    .revocations_per_second
                    .unwrap_or(RevocationSettings::DEFAULT_PER_CLIENT_PER_SECOND),
            },
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
            token_format: self.token_format.or(lower.token_format),
            signing_alg: self.signing_alg.or(lower.signing_alg),
            log_format: self.log_format.or(lower.log_format),
            max_failed_logins: self.max_failed_logins.or(lower.max_failed_logins),
            master_key: self.master_key.or(lower.master_key),
            key_publish_delay: self.key_publish_delay.or(lower.key_publish_delay),
            key_rotation_interval: self.key_rotation_interval.or(lower.key_rotation_interval),
            revocations_per_second: self.revocations_per_second.or(lower.revocations_per_second),
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
}
