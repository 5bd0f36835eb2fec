//! The login decision: does this login and password name a user who may log in
//! now? The password grant asks it today, and the browser login page of SPEC §7
//! asks the same question, so both give the same answers in the same order.
//!
//! Risks, first:
//! - telling an attacker which logins exist: an unknown login is checked against
//!   a decoy hash, so it costs the same Argon2 time as a wrong password, and
//!   answers the same `Bad credentials`;
//! - telling an attacker the account's state: the password is checked before the
//!   state, so only someone who knows it learns that the account is locked,
//!   disabled or expired;
//! - online guessing: every wrong password counts towards `--max-failed-logins`
//!   (one atomic statement per failure, so concurrent guesses all count), and
//!   the address throttle is asked before any password work.

use super::Core;
use super::error::OAuthError;
use super::login_throttle::LoginOrigin;
use super::model::User;
use super::storage::UserStore;
use crate::tokens::password::PasswordError;
use crate::tokens::secret::Secret;

/// A login attempt: who the person says they are, their password, and where
/// the attempt comes from (for the address throttle; `None` is not throttled).
#[derive(Debug, Clone)]
pub(crate) struct LoginAttempt {
    /// The login name, email or phone number (SPEC §4).
    pub login: String,
    /// The password as presented.
    pub password: Secret,
    /// The client's address, as the transport resolved it.
    pub origin: Option<LoginOrigin>,
}

/// Decides a login. Returns the user on success; otherwise the SPEC §4 error,
/// in this order:
/// 1. the address is throttled: `temporarily_unavailable`, before any work;
/// 2. unknown login or wrong password: `Bad credentials` (a wrong password also
///    counts towards the user's lockout);
/// 3. `User is disabled`, `User is locked`, `Password has expired`.
///
/// A success clears the user's count of failed logins.
pub(crate) async fn authenticate_user<S: UserStore>(
    core: &Core<S>,
    attempt: &LoginAttempt,
) -> Result<User, OAuthError> {
    // An address that keeps failing is refused here, before any password work,
    // so its guesses cost no Argon2 time and count against no account.
    let throttled = core.login_throttle.begin(attempt.origin)?;
    let user = core.store.find_user_by_login(&attempt.login).await?;
    let matches = core
        .passwords
        .verify(
            &attempt.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await
        .map_err(|err| match err {
            PasswordError::Busy => OAuthError::TemporarilyUnavailable,
            other => OAuthError::internal(other),
        })?;
    let Some(user) = user else {
        throttled.failed();
        return Err(OAuthError::bad_credentials());
    };
    if !matches {
        throttled.failed();
        core.store
            .record_failed_login(&user.id, core.policy.lock_after_failed_logins)
            .await?;
        return Err(OAuthError::bad_credentials());
    }
    // The password was right: the attempt counts as no failure, whatever the
    // account's state.
    drop(throttled);
    state_allows_login(&user)?;
    if user.failed_logins > 0 {
        core.store.reset_failed_logins(&user.id).await?;
    }
    Ok(user)
}

/// The account-state checks, in the SPEC's order of precedence.
fn state_allows_login(user: &User) -> Result<(), OAuthError> {
    if user.status.disabled {
        return Err(OAuthError::user_disabled());
    }
    if user.status.locked {
        return Err(OAuthError::user_locked());
    }
    if user.status.password_expired {
        return Err(OAuthError::password_expired());
    }
    Ok(())
}
