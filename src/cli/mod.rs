//! The command line (SPEC §3): `serve`, `migrate`, and the management commands.
//! Each management command prints one JSON value on stdout.

mod apikey;
mod client;
mod keys;
mod user;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::app::open_store;
use crate::config::{Config, Settings};
use crate::store::{PROPAGATION_TIME, SeaStore};

/// oauthd: an OAuth 2.0 authorization server as a gRPC microservice.
#[derive(Debug, Parser)]
#[command(name = "oauthd", version, about)]
pub struct Cli {
    /// Settings, accepted before or after the subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (gRPC and HTTP).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Manage clients.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Delete expired state now and print what was removed, by kind.
    Purge,
}

/// Runs a management command and returns what it prints.
///
/// A command that changes what servers hold in memory (a client's state or
/// secret, a user's lock, the keys, an API key) returns only once running servers have
/// reloaded, so that when it prints, the change is in force everywhere: the old
/// secret of `rotate-secret` stops working "at once" (SPEC §3).
pub async fn run_management(command: Command, config: &Config) -> anyhow::Result<Value> {
    let store = open_store(config).await?;
    let wait = changes_served_state(&command);
    let printed = dispatch(command, &store, config).await?;
    if wait {
        tokio::time::sleep(PROPAGATION_TIME).await;
    }
    Ok(printed)
}

fn changes_served_state(command: &Command) -> bool {
    match command {
        // Only expired rows go, which every server refuses already.
        Command::Serve | Command::Migrate | Command::Purge => false,
        Command::Client(command) => client::changes_served_state(command),
        Command::User(command) => user::changes_served_state(command),
        Command::Apikey(command) => apikey::changes_served_state(command),
        Command::Keys(command) => keys::changes_served_state(command),
    }
}

async fn dispatch(command: Command, store: &SeaStore, config: &Config) -> anyhow::Result<Value> {
    match command {
        Command::Serve => anyhow::bail!("serve is not a management command"),
        Command::Migrate => Ok(serde_json::json!({ "migrated": true })),
        Command::Client(command) => client::run(command, store).await,
        Command::User(command) => user::run(command, store).await,
        Command::Apikey(command) => apikey::run(command, store, config).await,
        Command::Keys(command) => keys::run(command, store, config).await,
        Command::Purge => Ok(serde_json::to_value(
            store.purge_expired(crate::clock::now()).await?,
        )?),
    }
}

/// The error of a command that names a client nobody registered.
pub(crate) fn no_client(client_id: &str) -> anyhow::Error {
    anyhow::anyhow!("no client with id {client_id}")
}

/// Reads a password from standard input: everything to the end, minus one
/// trailing newline (`--password-stdin`).
pub(crate) async fn read_password_stdin() -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt as _;
    let mut input = String::new();
    tokio::io::stdin().read_to_string(&mut input).await?;
    let password = input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(&input)
        .to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "the password read from standard input is empty"
    );
    Ok(password)
}
