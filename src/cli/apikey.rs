//! `oauthd apikey …` (SPEC §3, §8).

use anyhow::{anyhow, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::no_client;
use crate::clock;
use crate::config::Config;
use crate::oauth::api_keys::{ApiKeyRequest, NewApiKey, new_api_key, rotate_api_key};
use crate::oauth::model::ApiKeyRecord;
use crate::oauth::scope::ScopeSet;
use crate::oauth::storage::ApiKeyStore as _;
use crate::store::{ApiKeyView, SeaStore};

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for a client; prints it, once.
    Create {
        /// The client_id the key acts as.
        #[arg(long, allow_hyphen_values = true)]
        client: String,
        /// What to call the key (default: the client's name).
        #[arg(long)]
        name: Option<String>,
        /// Space-separated scopes, within the client's (default: all of the client's).
        #[arg(long)]
        scopes: Option<String>,
        /// Lifetime in seconds (default: 90 days; at most --api-key-max-ttl).
        #[arg(long, allow_negative_numbers = true)]
        expires_in: Option<i64>,
    },
    /// List keys, never their values.
    List {
        /// Only this client's keys.
        #[arg(long, allow_hyphen_values = true)]
        client: Option<String>,
    },
    /// Show one key, never its value.
    Show {
        /// The key_id.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The key_id.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
    /// Replace a key with a new one (same client, name and scopes, a fresh
    /// expiry); prints the new key, once.
    Rotate {
        /// The key_id.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
        /// Seconds the old key keeps working (default 0: it stops at once).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        overlap: i64,
    },
}

/// Whether the command changes what servers hold in memory. A new key needs
/// no wait: no server can hold an answer for a value nobody has seen.
pub(super) fn changes_served_state(command: &ApiKeyCommand) -> bool {
    matches!(
        command,
        ApiKeyCommand::Revoke { .. } | ApiKeyCommand::Rotate { .. }
    )
}

pub(super) async fn run(
    command: ApiKeyCommand,
    store: &SeaStore,
    config: &Config,
) -> anyhow::Result<Value> {
    let now = clock::now();
    match command {
        ApiKeyCommand::Create {
            client,
            name,
            scopes,
            expires_in,
        } => {
            let client = store
                .show_client(&client)
                .await?
                .ok_or_else(|| no_client(&client))?
                .client;
            let scopes = scopes
                .map(|text| {
                    ScopeSet::parse(&text)
                        .map_err(|err| anyhow!("invalid --scopes: {}", err.description()))
                })
                .transpose()?;
            let request = ApiKeyRequest {
                name,
                scopes,
                expires_in,
            };
            let key = new_api_key(&client, request, config.api_key_max_ttl, now)?;
            store.create_api_key(&key.record).await?;
            Ok(new_key_json(&key))
        }
        ApiKeyCommand::List { client } => {
            if let Some(client) = &client
                && store.show_client(client).await?.is_none()
            {
                return Err(no_client(client));
            }
            let keys = store.list_api_keys(client.as_deref()).await?;
            Ok(Value::Array(keys.iter().map(key_json).collect()))
        }
        ApiKeyCommand::Show { key_id } => Ok(key_json(&shown(store, &key_id).await?)),
        ApiKeyCommand::Revoke { key_id } => {
            // Revoking a revoked key changes nothing and is no error: the key
            // is revoked, as asked.
            store.revoke_api_key(&key_id).await?;
            Ok(key_json(&shown(store, &key_id).await?))
        }
        ApiKeyCommand::Rotate { key_id, overlap } => {
            if overlap < 0 {
                bail!("--overlap must be zero or a positive number of seconds, not {overlap}");
            }
            let old = shown(store, &key_id).await?.record;
            if old.revoked {
                bail!("API key {key_id} is revoked; create a new one instead");
            }
            let (new, old_stops_at) = rotate_api_key(&old, overlap, config.api_key_max_ttl, now);
            if !store
                .replace_api_key(&old, &new.record, old_stops_at)
                .await?
            {
                bail!(
                    "API key {key_id} was changed meanwhile (revoked or rotated); nothing was done"
                );
            }
            let mut printed = new_key_json(&new);
            if let Some(object) = printed.as_object_mut() {
                object.insert("rotated_key_id".to_owned(), json!(old.key_id));
                object.insert("rotated_key_expires_at".to_owned(), json!(old_stops_at));
            }
            Ok(printed)
        }
    }
}

async fn shown(store: &SeaStore, key_id: &str) -> anyhow::Result<ApiKeyView> {
    store
        .show_api_key(key_id)
        .await?
        .ok_or_else(|| anyhow!("no API key with id {key_id}"))
}

/// What `create` and `rotate` print: the key's value, this once.
fn new_key_json(key: &NewApiKey) -> Value {
    let mut value = common_json(&key.record);
    if let Some(object) = value.as_object_mut() {
        object.insert("api_key".to_owned(), json!(key.value.expose()));
    }
    value
}

/// What `list`, `show` and `revoke` print: everything but the value.
fn key_json(view: &ApiKeyView) -> Value {
    let record = &view.record;
    let mut value = common_json(record);
    if let Some(object) = value.as_object_mut() {
        object.insert("last_used_at".to_owned(), json!(view.last_used_at));
        object.insert("revoked".to_owned(), json!(record.revoked));
        object.insert("hint".to_owned(), json!(record.hint));
    }
    value
}

fn common_json(record: &ApiKeyRecord) -> Value {
    json!({
        "key_id": record.key_id,
        "client_id": record.client_id,
        "name": record.name,
        "scopes": record.scope.iter().collect::<Vec<_>>(),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
    })
}
