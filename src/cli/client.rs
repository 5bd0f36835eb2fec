//! `oauthd client …`.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::clock;
use crate::oauth::model::{GrantType, PkceRule};
use crate::oauth::registration::{Registration, check_registration};
use crate::oauth::scope::ScopeSet;
use crate::store::{ClientSpec, ClientUpdate, ClientView, SeaStore};

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (once) its secret.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Comma-separated grant types (client_credentials, password,
        /// refresh_token, authorization_code, implicit).
        #[arg(long, value_delimiter = ',', default_value = "client_credentials")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Access-token lifetime for this client, seconds.
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// A public client: no secret, authenticates with its id alone.
        #[arg(long)]
        public: bool,
        /// A redirect URI for authorization_code and implicit; repeat for more.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Never show the consent page (first-party confidential clients only).
        #[arg(long)]
        skip_consent: bool,
        /// Whether authorization requests must use PKCE (optional: confidential clients only).
        #[arg(long, value_parser = PKCE_RULES, default_value = "required")]
        pkce: String,
    },
    /// Change a client: only what is named; --redirect-uri replaces the whole list.
    Update {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated grant types, replacing the old (client_credentials,
        /// password, refresh_token, authorization_code, implicit).
        #[arg(long, value_delimiter = ',')]
        grant_types: Option<Vec<String>>,
        /// Space-separated scopes, replacing the old.
        #[arg(long)]
        scopes: Option<String>,
        /// Access-token lifetime for this client, seconds.
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// A redirect URI; repeat for more. Replaces every registered one.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Never show the consent page (first-party confidential clients only).
        #[arg(long, conflicts_with = "ask_consent")]
        skip_consent: bool,
        /// Show the consent page again.
        #[arg(long)]
        ask_consent: bool,
        /// Whether authorization requests must use PKCE (optional: confidential clients only).
        #[arg(long, value_parser = PKCE_RULES)]
        pkce: Option<String>,
    },
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Disable a client: it cannot authenticate and its tokens turn inactive.
    Disable {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Enable a client.
    Enable {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Replace the secret; prints the new one, and the old one stops working.
    RotateSecret {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete a client and its tokens.
    Delete {
        /// The client_id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// The values `--pkce` takes.
const PKCE_RULES: [&str; 2] = ["required", "optional"];

/// Whether the command changes what servers hold in memory. A new client needs
/// no wait: servers read a client they do not know from the database.
pub(super) fn changes_served_state(command: &ClientCommand) -> bool {
    !matches!(
        command,
        ClientCommand::Create { .. } | ClientCommand::List | ClientCommand::Show { .. }
    )
}

pub(super) async fn run(command: ClientCommand, store: &SeaStore) -> anyhow::Result<Value> {
    match command {
        ClientCommand::Create {
            name,
            grant_types,
            scopes,
            access_token_ttl,
            public,
            redirect_uris,
            skip_consent,
            pkce,
        } => {
            let spec = ClientSpec {
                name,
                grant_types: parse_grant_types(&grant_types)?,
                scopes: parse_scopes(&scopes)?,
                access_token_ttl: check_ttl(access_token_ttl)?,
                public,
                redirect_uris: without_repeats(redirect_uris),
                skip_consent,
                pkce: parse_pkce(&pkce)?,
            };
            check_registration(&Registration {
                grant_types: &spec.grant_types,
                public: spec.public,
                redirect_uris: &spec.redirect_uris,
                skip_consent: spec.skip_consent,
                pkce: spec.pkce,
            })
            .map_err(anyhow::Error::msg)?;
            Ok(client_json(&store.create_client(spec, clock::now()).await?))
        }
        ClientCommand::Update {
            id,
            name,
            grant_types,
            scopes,
            access_token_ttl,
            redirect_uris,
            skip_consent,
            ask_consent,
            pkce,
        } => {
            let update = ClientUpdate {
                name,
                grant_types: grant_types.as_deref().map(parse_grant_types).transpose()?,
                scopes: scopes.as_deref().map(parse_scopes).transpose()?,
                access_token_ttl: check_ttl(access_token_ttl)?,
                redirect_uris: (!redirect_uris.is_empty()).then(|| without_repeats(redirect_uris)),
                skip_consent: (skip_consent || ask_consent).then_some(skip_consent),
                pkce: pkce.as_deref().map(parse_pkce).transpose()?,
            };
            if update.is_empty() {
                bail!("client update names nothing to change (see oauthd client update --help)");
            }
            let current = store
                .show_client(&id)
                .await?
                .ok_or_else(|| super::no_client(&id))?;
            let updated = update.applied_to(current.client);
            check_registration(&Registration::of(&updated)).map_err(anyhow::Error::msg)?;
            let client = store
                .update_client(&id, update)
                .await?
                .ok_or_else(|| super::no_client(&id))?;
            Ok(client_json(&client))
        }
        ClientCommand::List => {
            let clients = store.list_clients().await?;
            Ok(Value::Array(clients.iter().map(client_json).collect()))
        }
        ClientCommand::Show { id } => {
            let client = store
                .show_client(&id)
                .await?
                .ok_or_else(|| super::no_client(&id))?;
            Ok(client_json(&client))
        }
        ClientCommand::Disable { id } => {
            let client = store
                .set_client_enabled(&id, false)
                .await?
                .ok_or_else(|| super::no_client(&id))?;
            Ok(client_json(&client))
        }
        ClientCommand::Enable { id } => {
            let client = store
                .set_client_enabled(&id, true)
                .await?
                .ok_or_else(|| super::no_client(&id))?;
            Ok(client_json(&client))
        }
        ClientCommand::RotateSecret { id } => {
            let client = store
                .rotate_client_secret(&id)
                .await?
                .with_context(|| format!("no confidential client with id {id}"))?;
            Ok(client_json(&client))
        }
        ClientCommand::Delete { id } => {
            if !store.delete_client(&id).await? {
                return Err(super::no_client(&id));
            }
            Ok(json!({ "client_id": id, "deleted": true }))
        }
    }
}

fn parse_grant_types(names: &[String]) -> anyhow::Result<Vec<GrantType>> {
    let mut grants = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let grant: GrantType = name.parse().map_err(|err: String| anyhow::anyhow!(err))?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    anyhow::ensure!(!grants.is_empty(), "--grant-types names no grant type");
    Ok(grants)
}

fn parse_scopes(scopes: &str) -> anyhow::Result<ScopeSet> {
    ScopeSet::parse(scopes)
        .map_err(|err| anyhow::anyhow!("invalid --scopes: {}", err.description()))
}

fn parse_pkce(rule: &str) -> anyhow::Result<PkceRule> {
    rule.parse().map_err(anyhow::Error::msg)
}

fn check_ttl(access_token_ttl: Option<i64>) -> anyhow::Result<Option<i64>> {
    if access_token_ttl.is_some_and(|ttl| ttl <= 0) {
        bail!("--access-token-ttl must be a positive number of seconds");
    }
    Ok(access_token_ttl)
}

/// The URIs in the order given, each once.
fn without_repeats(uris: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        if !kept.contains(&uri) {
            kept.push(uri);
        }
    }
    kept
}

fn client_json(view: &ClientView) -> Value {
    let client = &view.client;
    let mut value = json!({
        "client_id": client.id,
        "name": client.name,
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scopes": client.scopes.iter().collect::<Vec<_>>(),
        "access_token_ttl": client.access_token_ttl,
        "public": client.is_public(),
        "enabled": client.enabled,
        "created_at": view.created_at,
        "redirect_uris": client.redirect_uris,
        "skip_consent": client.skip_consent,
        "pkce": client.pkce.as_str(),
    });
    if let (Some(secret), Some(object)) = (&view.secret, value.as_object_mut()) {
        object.insert("client_secret".to_owned(), Value::String(secret.clone()));
    }
    value
}
