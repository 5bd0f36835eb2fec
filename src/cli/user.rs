//! `oauthd user …`. Users are named by username, email or phone.

use clap::Subcommand;
use serde_json::{Value, json};

use super::read_password_stdin;
use crate::clock;
use crate::oauth::model::User;
use crate::store::{SeaStore, UserChange, UserSpec};
use crate::tokens::password::hash_password;

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Email address, also accepted as the login.
        #[arg(long)]
        email: Option<String>,
        /// Phone number, also accepted as the login.
        #[arg(long)]
        phone: Option<String>,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Lock a user.
    Lock {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Unlock a user and reset failed logins.
    Unlock {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Disable a user.
    Disable {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Enable a user.
    Enable {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Require a new password before the next login.
    ExpirePassword {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Set a new password, read from standard input.
    SetPassword {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// Whether the command changes what servers hold in memory (locked and disabled
/// users); passwords are always read from the database.
pub(super) fn changes_served_state(command: &UserCommand) -> bool {
    matches!(
        command,
        UserCommand::Lock { .. }
            | UserCommand::Unlock { .. }
            | UserCommand::Disable { .. }
            | UserCommand::Enable { .. }
    )
}

pub(super) async fn run(command: UserCommand, store: &SeaStore) -> anyhow::Result<Value> {
    let (login, change) = match command {
        UserCommand::Create {
            username,
            email,
            phone,
            password_stdin: _,
        } => {
            anyhow::ensure!(!username.is_empty(), "--username must not be empty");
            let password_hash = hash_off_runtime(read_password_stdin().await?).await?;
            let spec = UserSpec {
                username,
                email: email.filter(|e| !e.is_empty()),
                phone: phone.filter(|p| !p.is_empty()),
                password_hash,
            };
            return Ok(user_json(&store.create_user(spec, clock::now()).await?));
        }
        UserCommand::Lock { user } => (user, UserChange::Lock),
        UserCommand::Unlock { user } => (user, UserChange::Unlock),
        UserCommand::Disable { user } => (user, UserChange::Disable),
        UserCommand::Enable { user } => (user, UserChange::Enable),
        UserCommand::ExpirePassword { user } => (user, UserChange::ExpirePassword),
        UserCommand::SetPassword {
            user,
            password_stdin: _,
        } => {
            let hash = hash_off_runtime(read_password_stdin().await?).await?;
            (user, UserChange::SetPassword(hash))
        }
    };
    let user = store
        .change_user(&login, change)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {login}"))?;
    Ok(user_json(&user))
}

async fn hash_off_runtime(password: String) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await??)
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "locked": user.status.locked,
        "disabled": user.status.disabled,
        "password_expired": user.status.password_expired,
        "failed_logins": user.failed_logins,
    })
}
