//! The resource owner password credentials grant (RFC 6749 §4.3).

use super::super::Core;
use super::super::error::OAuthError;
use super::super::issuance::{
    IssuedTokens, Owner, mint_access, mint_refresh, persist_access, resolve_scope,
};
use super::super::login_throttle::LoginOrigin;
use super::super::model::{Client, GrantType, UnixTime};
use super::super::storage::Stores;
use crate::tokens::password::PasswordError;
use crate::tokens::secret::{Secret, new_id};

/// What the user presented, and from where.
pub(super) struct Login {
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
    pub(super) origin: Option<LoginOrigin>,
}

pub(super) async fn issue<S: Stores>(
    core: &Core<S>,
    client: &Client,
    login: Login,
    scope: Option<&str>,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    let username = login
        .username
        .filter(|name| !name.is_empty())
        .ok_or_else(OAuthError::missing_username)?;
    let password = login
        .password
        .ok_or_else(|| OAuthError::missing_parameter("password"))?;
    let scope = resolve_scope(client, scope)?;
    // An address that keeps failing is refused here, before any password work,
    // so its guesses cost no Argon2 time and count against no account.
    let attempt = core.login_throttle.begin(login.origin)?;

    let user = core.store.find_user_by_login(&username).await?;
    // The password is checked before the account state, so that only someone who
    // knows the password learns whether the account is locked or disabled. An
    // unknown login is checked against a decoy hash to take the same time.
    let matches = core
        .passwords
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
        .map_err(|err| match err {
            PasswordError::Busy => OAuthError::TemporarilyUnavailable,
            other => OAuthError::Internal(other.to_string()),
        })?;
    let Some(user) = user else {
        attempt.failed();
        return Err(OAuthError::bad_credentials());
    };
    if !matches {
        attempt.failed();
        core.store
            .record_failed_login(&user.id, core.policy.lock_after_failed_logins)
            .await?;
        return Err(OAuthError::bad_credentials());
    }
    if user.status.disabled {
        return Err(OAuthError::user_disabled());
    }
    if user.status.locked {
        return Err(OAuthError::user_locked());
    }
    if user.status.password_expired {
        return Err(OAuthError::password_expired());
    }
    // The password was right: the attempt ends here, and counts as no failure.
    drop(attempt);
    if user.failed_logins > 0 {
        core.store.reset_failed_logins(&user.id).await?;
    }

    let access = mint_access(core, client, Some(Owner::from(&user)), &scope, now)?;
    let refresh_token = if client.allows(GrantType::RefreshToken) {
        let (value, record) = mint_refresh(core, &new_id(), &scope, &access, now);
        core.store.insert_refresh(&record).await?;
        Some(value)
    } else {
        None
    };
    persist_access(core, &access).await?;
    Ok(IssuedTokens {
        expires_in: access.claims.exp - now,
        access_token: access.token,
        refresh_token,
        scope,
    })
}
