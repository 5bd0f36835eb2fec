//! Maps sea-orm errors onto the core's `StoreError`, as a `From` impl so that
//! `?` converts them: the core's error type cannot name sea-orm itself.
//!
//! The distinction that matters to clients is "the database does not answer"
//! (retry later: `temporarily_unavailable`) against everything else.

use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

use crate::oauth::storage::{StoreCause, StoreError};

/// SQLite primary result codes that mean the file cannot be used right now.
/// <https://www.sqlite.org/rescode.html>
const SQLITE_UNAVAILABLE: [i64; 7] = [
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    26, // SQLITE_NOTADB
];

/// PostgreSQL SQLSTATE classes and codes that mean the server cannot serve now:
/// 08 connection exception, 53 insufficient resources, 57P0x operator intervention.
fn postgres_unavailable(state: &str) -> bool {
    state.starts_with("08") || state.starts_with("53") || state.starts_with("57P0")
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        classify(err)
    }
}

/// Classifies a database error.
fn classify(err: DbErr) -> StoreError {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
        return StoreError::Conflict(StoreCause::new(err));
    }
    let unavailable = match &err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            sqlx_unavailable(inner)
        }
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(StoreCause::new(err))
    } else {
        other(err)
    }
}

/// `StoreError::Other`, caused by `err`.
pub(super) fn other(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(StoreCause::new(err))
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            match code.parse::<i64>() {
                // SQLite reports extended result codes; the low byte is the primary.
                Ok(sqlite) => SQLITE_UNAVAILABLE.contains(&(sqlite & 0xff)),
                Err(_) => postgres_unavailable(&code),
            }
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_error_is_kept_as_the_cause_and_quoted_once() {
        let err = StoreError::from(DbErr::Conn(RuntimeErr::Internal("refused".into())));
        assert!(matches!(err, StoreError::Unavailable(_)));
        let kept = err.cause().error().downcast_ref::<DbErr>();
        assert!(matches!(kept, Some(DbErr::Conn(_))), "{kept:?}");
        let cause = err.cause().to_string();
        assert_eq!(err.to_string(), format!("database unavailable: {cause}"));
        // The chain goes on below the cause, which the message already quotes.
        let below = std::error::Error::source(&err).map(ToString::to_string);
        assert_ne!(below.as_deref(), Some(cause.as_str()));
    }

    #[test]
    fn errors_are_equal_by_kind_and_message() {
        let err = other(DbErr::Custom("broken".into()));
        assert_eq!(err.clone(), err);
        assert_eq!(err, other(DbErr::Custom("broken".into())));
        assert_ne!(err, other(DbErr::Custom("other".into())));
        assert_ne!(
            StoreError::Conflict("x".into()),
            StoreError::Other("x".into())
        );
    }
}
