//! `oauthd keys …`.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::clock;
use crate::config::Config;
use crate::store::{KeyView, SeaStore};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys (never their private part).
    List,
    /// Add a signing key (published now, signing after --key-publish-delay) and
    /// retire the current one.
    Rotate,
}

/// Whether the command changes what servers hold in memory.
pub(super) fn changes_served_state(command: &KeysCommand) -> bool {
    matches!(command, KeysCommand::Rotate)
}

pub(super) async fn run(
    command: KeysCommand,
    store: &SeaStore,
    config: &Config,
) -> anyhow::Result<Value> {
    let now = clock::now();
    match command {
        KeysCommand::List => {
            let keys = store.list_keys().await?;
            Ok(Value::Array(
                keys.iter().map(|key| key_json(key, now)).collect(),
            ))
        }
        KeysCommand::Rotate => {
            let key = store
                .rotate_keys(config.policy.signing_alg, now, config.key_publish_delay)
                .await?;
            Ok(key_json(&key, now))
        }
    }
}

fn key_json(key: &KeyView, now: i64) -> Value {
    let state = match key.deactivated_at {
        Some(end) if end <= now => "retired",
        _ if key.activates_at > now => "published",
        _ => "active",
    };
    json!({
        "kid": key.kid,
        "alg": key.alg,
        "state": state,
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "deactivated_at": key.deactivated_at,
    })
}
