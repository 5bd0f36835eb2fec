//! Users: the `UserStore` the password grant uses and the management operations
//! the CLI runs.

use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, TransactionTrait,
};

use super::SeaStore;
use super::changes::{Announced, ChangeKind};
use super::entities::user;
use super::retry::retrying;
use super::sessions::end_sessions_of;
use crate::oauth::model::{UnixTime, User, UserStatus};
use crate::oauth::storage::{StoreError, UserStore};
use crate::tokens::secret::new_id;

/// What `user create` asks for.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name.
    pub username: String,
    /// Optional email, also a login.
    pub email: Option<String>,
    /// Optional phone, also a login.
    pub phone: Option<String>,
    /// Argon2id hash of the password.
    pub password_hash: String,
}

/// A change an administrator makes to a user.
#[derive(Debug, Clone)]
pub enum UserChange {
    /// Lock the account.
    Lock,
    /// Unlock it and forget past failed logins.
    Unlock,
    /// Disable it.
    Disable,
    /// Enable it.
    Enable,
    /// Require a new password before the next login.
    ExpirePassword,
    /// Set a new password (Argon2id hash); clears the expiry and failed logins.
    SetPassword(String),
}

pub(super) fn status_of(row: &user::Model) -> UserStatus {
    UserStatus {
        locked: row.locked,
        disabled: row.disabled,
        password_expired: row.password_expired,
    }
}

fn to_domain(row: user::Model) -> User {
    User {
        status: status_of(&row),
        id: row.id,
        username: row.username,
        email: row.email,
        phone: row.phone,
        password_hash: row.password_hash,
        failed_logins: row.failed_logins,
    }
}

/// Locks the user once `lock_after` failures are counted, in one statement.
/// Returns the user's status if this call locked them, `None` if they were
/// locked already or are below the limit.
async fn lock_if_due(
    conn: &impl ConnectionTrait,
    user_id: &str,
    lock_after: u32,
) -> Result<Option<UserStatus>, StoreError> {
    let statement = Query::update()
        .table(user::Entity)
        .value(user::Column::Locked, true)
        .and_where(user::Column::Id.eq(user_id))
        .and_where(user::Column::Locked.eq(false))
        .and_where(user::Column::FailedLogins.gte(i64::from(lock_after)))
        .returning(
            Query::returning().columns([user::Column::Disabled, user::Column::PasswordExpired]),
        )
        .to_owned();
    let Some(row) = conn.query_one(&statement).await? else {
        return Ok(None);
    };
    Ok(Some(UserStatus {
        locked: true,
        disabled: row.try_get("", "disabled")?,
        password_expired: row.try_get("", "password_expired")?,
    }))
}

fn login_matches(login: &str) -> Condition {
    Condition::any()
        .add(user::Column::Username.eq(login))
        .add(user::Column::Email.eq(login))
        .add(user::Column::Phone.eq(login))
}

impl UserStore for SeaStore {
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let rows = user::Entity::find()
            .filter(login_matches(login))
            .all(self.db())
            .await?;
        // A login could in principle be one user's name and another's email
        // (creation refuses it, but rows may predate that); the username wins.
        let rank = |row: &user::Model| {
            if row.username == login {
                0
            } else if row.email.as_deref() == Some(login) {
                1
            } else {
                2
            }
        };
        Ok(rows.into_iter().min_by_key(rank).map(to_domain))
    }

    async fn record_failed_login(&self, user_id: &str, lock_after: u32) -> Result<(), StoreError> {
        let locked = retrying(|| async {
            let turn = self.write_turn().await;
            let change = Announced::begin(turn.db(), ChangeKind::Users).await?;
            user::Entity::update_many()
                .col_expr(
                    user::Column::FailedLogins,
                    Expr::col(user::Column::FailedLogins).add(1),
                )
                .filter(user::Column::Id.eq(user_id))
                .exec(change.txn())
                .await?;
            let locked = if lock_after > 0 {
                lock_if_due(change.txn(), user_id, lock_after).await?
            } else {
                None
            };
            if locked.is_some() {
                end_sessions_of(change.txn(), user_id).await?;
            }
            match locked {
                Some(_) => change.commit().await?,
                // Only the count moved, and servers do not hold counts.
                None => change.commit_unannounced().await?,
            }
            Ok(locked)
        })
        .await?;
        if let Some(status) = locked {
            tracing::warn!(user_id, "user locked after too many failed logins");
            // The request waits for no reload: this server's own requests see
            // the lock at once, the others' on their next sync.
            self.cache().put_user_status(user_id, status);
        }
        Ok(())
    }

    async fn find_user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id(user_id.to_owned())
            .one(self.db())
            .await?
            .map(to_domain))
    }

    async fn reset_failed_logins(&self, user_id: &str) -> Result<(), StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            user::Entity::update_many()
                .col_expr(user::Column::FailedLogins, 0.into())
                .filter(user::Column::Id.eq(user_id))
                .exec(turn.db())
                .await?;
            Ok(())
        })
        .await
    }

    fn user_status(&self, user_id: &str) -> UserStatus {
        self.cache().user_status(user_id)
    }
}

impl SeaStore {
    /// Creates a user. Usernames, emails and phone numbers share one namespace,
    /// since any of them logs in: a value already used by anyone is a conflict.
    pub async fn create_user(&self, spec: UserSpec, now: UnixTime) -> Result<User, StoreError> {
        let logins: Vec<&str> = [
            Some(spec.username.as_str()),
            spec.email.as_deref(),
            spec.phone.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut taken = Condition::any();
        for login in &logins {
            taken = taken.add(login_matches(login));
        }
        let row = user::ActiveModel {
            id: Set(new_id()),
            username: Set(spec.username),
            email: Set(spec.email),
            phone: Set(spec.phone),
            password_hash: Set(spec.password_hash),
            locked: Set(false),
            disabled: Set(false),
            password_expired: Set(false),
            failed_logins: Set(0),
            created_at: Set(now),
        };
        // Under SERIALIZABLE two creations of one login conflict, and the
        // retry of the loser finds the winner's user.
        let row = retrying(|| async {
            let txn = self.db().begin().await?;
            if user::Entity::find()
                .filter(taken.clone())
                .one(&txn)
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict(
                    "a user with this username, email or phone already exists".into(),
                ));
            }
            let row = row.clone().insert(&txn).await?;
            txn.commit().await?;
            Ok(row)
        })
        .await?;
        Ok(to_domain(row))
    }

    /// Applies an administrator's change to the user `login` names. `Ok(None)` if
    /// there is no such user.
    pub async fn change_user(
        &self,
        login: &str,
        change: UserChange,
    ) -> Result<Option<User>, StoreError> {
        let Some(user) = self.find_user_by_login(login).await? else {
            return Ok(None);
        };
        let update = user::Entity::update_many().filter(user::Column::Id.eq(user.id.as_str()));
        // SPEC §7: locking or disabling a user ends their browser sessions;
        // so does a new password, which is what a user who fears a stolen
        // session expects, and an expired one, which no session may outlive
        // (the login page then asks for the password, and refuses it).
        let ends_sessions = matches!(
            change,
            UserChange::Lock
                | UserChange::Disable
                | UserChange::SetPassword(_)
                | UserChange::ExpirePassword
        );
        let update = match change {
            UserChange::Lock => update.col_expr(user::Column::Locked, true.into()),
            UserChange::Unlock => update
                .col_expr(user::Column::Locked, false.into())
                .col_expr(user::Column::FailedLogins, 0.into()),
            UserChange::Disable => update.col_expr(user::Column::Disabled, true.into()),
            UserChange::Enable => update.col_expr(user::Column::Disabled, false.into()),
            UserChange::ExpirePassword => {
                update.col_expr(user::Column::PasswordExpired, true.into())
            }
            UserChange::SetPassword(hash) => update
                .col_expr(user::Column::PasswordHash, hash.into())
                .col_expr(user::Column::PasswordExpired, false.into())
                .col_expr(user::Column::FailedLogins, 0.into()),
        };
        retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Users).await?;
            update.clone().exec(change.txn()).await?;
            if ends_sessions {
                end_sessions_of(change.txn(), &user.id).await?;
            }
            change.commit().await
        })
        .await?;
        self.find_user_by_login(&user.username).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn user(store: &SeaStore, name: &str) -> User {
        let spec = UserSpec {
            username: name.into(),
            email: None,
            phone: None,
            password_hash: "unused".into(),
        };
        store.create_user(spec, 1_800_000_000).await.unwrap()
    }

    // Two servers on one database. The one that counts the locking failure
    // sees the lock before any sync, and its next sync still reads the users
    // that the other one changed meanwhile.
    #[tokio::test]
    async fn a_lockout_is_seen_at_once_and_the_next_sync_still_reads_other_changes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let here = SeaStore::open(&url, 2, None).await.unwrap();
        let there = SeaStore::open(&url, 2, None).await.unwrap();
        let alice = user(&here, "alice").await;
        user(&here, "bob").await;
        let bob = there.change_user("bob", UserChange::Disable).await.unwrap();
        let bob = bob.unwrap().id;
        here.sync_now().await.unwrap();
        assert!(here.user_status(&bob).disabled);

        there.change_user("bob", UserChange::Enable).await.unwrap();
        here.record_failed_login(&alice.id, 2).await.unwrap();
        assert!(!here.user_status(&alice.id).locked);
        here.record_failed_login(&alice.id, 2).await.unwrap();
        assert!(here.user_status(&alice.id).locked);
        assert!(here.user_status(&bob).disabled, "no sync ran yet");

        here.sync_now().await.unwrap();
        assert!(here.user_status(&alice.id).locked);
        assert!(!here.user_status(&bob).disabled);
        there.sync_now().await.unwrap();
        assert!(there.user_status(&alice.id).locked);
    }
}
