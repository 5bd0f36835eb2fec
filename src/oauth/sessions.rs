//! Browser login sessions (SPEC §7): who the `oauthd_session` cookie names.
//!
//! Risks, first:
//! - session fixation: every login starts a new session with a new random
//!   id; a value the browser brought along is never promoted to a session;
//! - a stolen database: only the SHA-256 of the id is stored, so a copy of
//!   the table logs no one in;
//! - a session outliving its user's right to log in: a session counts only
//!   while its user exists and is neither locked nor disabled, whatever the
//!   table still holds (management commands also delete the rows).

use super::Core;
use super::error::OAuthError;
use super::model::{SessionRecord, UnixTime, User};
use super::storage::Stores;
use crate::tokens::secret::{hash_secret, is_random_urlsafe_32, random_urlsafe};

/// `--session-ttl`'s default, seconds (SPEC §2).
pub const DEFAULT_SESSION_TTL: i64 = 86_400;

/// Bytes of randomness in a session id: 256 bits.
const SESSION_ID_BYTES: usize = 32;

/// A session just started: the cookie's value, shown to nobody else.
pub struct StartedSession {
    /// The value for the cookie.
    pub id: String,
    /// When it ends by itself.
    pub expires_at: UnixTime,
}

/// Starts a session for `user`, who just logged in.
pub async fn start<S: Stores>(
    core: &Core<S>,
    user: &User,
    now: UnixTime,
) -> Result<StartedSession, OAuthError> {
    let id = random_urlsafe(SESSION_ID_BYTES);
    let record = SessionRecord {
        session_hash: hash_secret(&id),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + core.policy.session_ttl,
    };
    core.store.insert_session(&record).await?;
    Ok(StartedSession {
        id,
        expires_at: record.expires_at,
    })
}

/// The user the cookie's value names, if it names a live session of a user
/// who may still log in. A value that cannot be a session id costs no lookup.
pub async fn user_of<S: Stores>(
    core: &Core<S>,
    cookie: &str,
    now: UnixTime,
) -> Result<Option<User>, OAuthError> {
    if !is_random_urlsafe_32(cookie) {
        return Ok(None);
    }
    let Some(session) = core.store.find_session(&hash_secret(cookie)).await? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        return Ok(None);
    }
    let user = core.store.find_user_by_id(&session.user_id).await?;
    Ok(user.filter(|user| user.status.may_hold_tokens() && !user.status.password_expired))
}

/// Ends the session the cookie's value names, if any.
pub async fn end<S: Stores>(core: &Core<S>, cookie: &str) -> Result<(), OAuthError> {
    if is_random_urlsafe_32(cookie) {
        core.store.delete_session(&hash_secret(cookie)).await?;
    }
    Ok(())
}
