//! `oauthd user …`. Users are named by username, email or phone.

use clap::Subcommand;
use serde_json::{Value, json};

use super::read_password_stdin;
use crate::clock;
use crate::oauth::model::{SessionRecord, User};
use crate::oauth::storage::UserStore as _;
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
    /// List the user's browser sessions: when each began and ends, never its id.
    Sessions {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// End every browser session of the user.
    Logout {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Forget the scopes the user approved, for one client or for all.
    RevokeConsent {
        /// Username, email or phone.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Only this client's consent.
        #[arg(long = "client", value_name = "ID", allow_hyphen_values = true)]
        client_id: Option<String>,
    },
}

/// Whether the command changes what servers hold in memory (locked and disabled
/// users); passwords, sessions and consents are always read from the database.
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
        UserCommand::Sessions { user } => {
            let user = find_user(store, &user).await?;
            let now = clock::now();
            let sessions = store.sessions_of(&user.id).await?;
            // A session past its end is over, whether or not purge has
            // removed its row yet.
            let live = sessions.iter().filter(|session| session.expires_at > now);
            return Ok(Value::Array(live.map(session_json).collect()));
        }
        UserCommand::Logout { user } => {
            let user = find_user(store, &user).await?;
            let ended = store.end_sessions(&user.id).await?;
            return Ok(json!({ "username": user.username, "sessions_ended": ended }));
        }
        UserCommand::RevokeConsent { user, client_id } => {
            let user = find_user(store, &user).await?;
            if let Some(client_id) = &client_id
                && store.show_client(client_id).await?.is_none()
            {
                return Err(super::no_client(client_id));
            }
            let revoked = store.forget_consent(&user.id, client_id.as_deref()).await?;
            return Ok(json!({
                "username": user.username,
                "client_id": client_id,
                "consents_revoked": revoked,
            }));
        }
    };
    let user = store
        .change_user(&login, change)
        .await?
        .ok_or_else(|| no_user(&login))?;
    Ok(user_json(&user))
}

/// The user `login` (username, email or phone) names.
async fn find_user(store: &SeaStore, login: &str) -> anyhow::Result<User> {
    store
        .find_user_by_login(login)
        .await?
        .ok_or_else(|| no_user(login))
}

/// The error of a command that names a user nobody created.
fn no_user(login: &str) -> anyhow::Error {
    anyhow::anyhow!("no user {login}")
}

/// A session as `user sessions` shows it (SPEC §7): its times only. Never
/// its id, which would let whoever reads the output take the session over,
/// nor the hash the database keys it by.
fn session_json(session: &SessionRecord) -> Value {
    json!({
        "created_at": session.created_at,
        "expires_at": session.expires_at,
    })
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
