//! Maps sea-orm errors onto the core's `StoreError`, as a `From` impl so that
//! `?` converts them: the core's error type cannot name sea-orm itself.
//!
//! The distinction that matters to clients is "the database does not answer"
//! (retry later: `temporarily_unavailable`) against everything else.
//!
//! A database error's code means different things on each backend: SQLite's
//! are numbers, PostgreSQL's are SQLSTATEs, most of them all digits too (08006
//! is a connection failure, not SQLite's code 8006). So the code is read in
//! the terms of the backend whose error type it came in.

use sea_orm::sqlx::error::DatabaseError;
use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::sqlx::sqlite::SqliteError;
use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

use crate::oauth::storage::{StoreCause, StoreError};

/// SQLite primary result codes that mean the file cannot be used right now.
/// <https://www.sqlite.org/rescode.html>
const SQLITE_UNAVAILABLE: [i64; 7] = [
    SQLITE_BUSY,
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
    26, // SQLITE_NOTADB
];

/// Another connection holds the write lock (after the busy timeout), or wrote
/// since this transaction read (`SQLITE_BUSY_SNAPSHOT`, extended code 517).
const SQLITE_BUSY: i64 = 5;

/// PostgreSQL SQLSTATE classes and codes that mean the server cannot serve now:
/// 08 connection exception, 53 insufficient resources, 57P0x operator
/// intervention; and 40001 and 40P01, a serialization failure and a deadlock,
/// which a later try may well not meet.
fn postgres_unavailable(state: &str) -> bool {
    state.starts_with("08")
        || state.starts_with("53")
        || state.starts_with("57P0")
        || matches!(state, "40001" | "40P01")
}

/// A database error's code, in the terms of the backend that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code<'a> {
    /// A PostgreSQL SQLSTATE.
    Postgres(&'a str),
    /// A SQLite extended result code; its low byte is the primary code.
    Sqlite(i64),
}

impl<'a> Code<'a> {
    fn of(err: &'a dyn DatabaseError) -> Option<Self> {
        if let Some(postgres) = err.try_downcast_ref::<PgDatabaseError>() {
            return Some(Self::Postgres(postgres.code()));
        }
        if err.try_downcast_ref::<SqliteError>().is_some() {
            return err.code()?.parse().ok().map(Self::Sqlite);
        }
        None
    }

    fn unavailable(self) -> bool {
        match self {
            Self::Postgres(state) => postgres_unavailable(state),
            Self::Sqlite(code) => SQLITE_UNAVAILABLE.contains(&(code & 0xff)),
        }
    }
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

/// Why a failed write is worth running again, as `/metrics` names it: the
/// database rolled the transaction back over a conflict with another one,
/// which a later try may well not meet. `None` for every other failure.
pub(super) fn retry_reason(err: &StoreError) -> Option<&'static str> {
    let StoreError::Unavailable(cause) = err else {
        return None;
    };
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) =
        cause.error().downcast_ref::<DbErr>()?
    else {
        return None;
    };
    let sqlx::Error::Database(db) = inner.as_ref() else {
        return None;
    };
    match Code::of(db.as_ref())? {
        Code::Postgres("40001") => Some("serialization_failure"),
        Code::Postgres("40P01") => Some("deadlock"),
        Code::Sqlite(code) if code & 0xff == SQLITE_BUSY => Some("sqlite_busy"),
        _ => None,
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
        sqlx::Error::Database(db) => Code::of(db.as_ref()).is_some_and(Code::unavailable),
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]

    use sea_orm::{ConnectionTrait as _, Database, DatabaseConnection, TransactionTrait as _};

    use super::*;

    /// The PostgreSQL server of the suite: `OAUTHD_TEST_DATABASE_URL`, else the
    /// local one. Fails, never skips, when none answers.
    pub(in crate::store) async fn postgres() -> DatabaseConnection {
        let url = std::env::var("OAUTHD_TEST_DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"))
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        Database::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {url}: {err}"))
    }

    /// What the store makes of the error PostgreSQL raises with SQLSTATE `state`.
    pub(in crate::store) async fn raised(db: &DatabaseConnection, state: &str) -> StoreError {
        let raise = format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised by a test' USING ERRCODE = '{state}'; END $$"
        );
        StoreError::from(db.execute_unprepared(&raise).await.unwrap_err())
    }

    /// A SQLite file in WAL mode, as the store opens it, with one counter row.
    pub(in crate::store) async fn sqlite_counter() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = super::super::connect::connect(&url, 2).await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL); \
             INSERT INTO counter (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter)",
        )
        .await
        .unwrap();
        (dir, db)
    }

    /// A transaction reads, another connection writes, and the transaction's
    /// own write then fails at once, whatever the busy timeout: its snapshot
    /// is stale (`SQLITE_BUSY_SNAPSHOT`).
    pub(in crate::store) async fn busy_snapshot(db: &DatabaseConnection) -> StoreError {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("SELECT n FROM counter")
            .await
            .unwrap();
        db.execute_unprepared("UPDATE counter SET n = n + 1")
            .await
            .unwrap();
        let err = txn
            .execute_unprepared("UPDATE counter SET n = n + 1")
            .await
            .unwrap_err();
        StoreError::from(err)
    }

    #[test]
    fn codes_are_read_in_their_own_backends_terms() {
        use Code::{Postgres, Sqlite};
        // PostgreSQL: connection exceptions, insufficient resources, operator
        // intervention, serialization failures and deadlocks are unavailable;
        // all digits or not, they are no SQLite codes.
        for state in [
            "08006", "08001", "53300", "53100", "57P01", "40001", "40P01",
        ] {
            assert!(Postgres(state).unavailable(), "{state}");
        }
        // Digits that would be SQLite's busy, read or I/O errors.
        for state in ["00005", "00008", "00010", "23505", "22012", "40002"] {
            assert!(!Postgres(state).unavailable(), "{state}");
        }
        // SQLite: the low byte is the primary code.
        for code in [5, 261, 517, 773, 6, 8, 10, 266, 13, 14, 26] {
            assert!(Sqlite(code).unavailable(), "{code}");
        }
        for code in [1, 19, 2067, 1555, 8006, 53300] {
            assert!(!Sqlite(code).unavailable(), "{code}");
        }
    }

    #[tokio::test]
    async fn postgresql_errors_are_sorted_by_their_sqlstate() {
        let db = postgres().await;
        for state in ["40001", "40P01", "08006", "53300"] {
            let err = raised(&db, state).await;
            assert!(matches!(err, StoreError::Unavailable(_)), "{state}: {err}");
        }
        let err = raised(&db, "23505").await;
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let err = raised(&db, "22012").await;
        assert!(matches!(err, StoreError::Other(_)), "{err}");
    }

    #[tokio::test]
    async fn only_conflicts_between_transactions_are_worth_a_retry() {
        let db = postgres().await;
        assert_eq!(
            retry_reason(&raised(&db, "40001").await),
            Some("serialization_failure")
        );
        assert_eq!(retry_reason(&raised(&db, "40P01").await), Some("deadlock"));
        // Unavailable, but not over a conflict: retrying at once would not help.
        for state in ["08006", "53300", "57P01", "23505", "22012"] {
            assert_eq!(retry_reason(&raised(&db, state).await), None, "{state}");
        }
        let (_dir, sqlite) = sqlite_counter().await;
        assert_eq!(
            retry_reason(&busy_snapshot(&sqlite).await),
            Some("sqlite_busy")
        );
        let down = StoreError::from(DbErr::Conn(RuntimeErr::Internal("refused".into())));
        assert_eq!(retry_reason(&down), None);
    }

    #[tokio::test]
    async fn sqlite_busy_is_unavailable() {
        let (_dir, db) = sqlite_counter().await;
        let err = busy_snapshot(&db).await;
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    }

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
