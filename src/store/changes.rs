//! Change tracking by kind: one `state_version` row per kind of state that
//! servers keep in memory, so that a change of one kind reloads only that kind.
//!
//! Every writer bumps its kind's counter inside the transaction of its change;
//! the sync task reads all counters in one query four times a second and
//! reloads the kinds whose counter moved. Row 1 is the single counter of
//! releases before this split: nothing writes or reads it any more.

use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, TransactionTrait,
};

use super::entities::state_version;
use crate::oauth::storage::StoreError;

/// A kind of state servers keep in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// Registered clients.
    Clients,
    /// Users who are locked or disabled.
    Users,
    /// Signing keys.
    Keys,
    /// Revoked access tokens. Unlike the others this counter also orders the
    /// revocations: see [`bump_returning`].
    Revocations,
    /// API keys. Servers hold the keys they have been asked about, and drop
    /// them all when this counter moves.
    ApiKeys,
}

impl ChangeKind {
    /// Every kind, in [`Versions`] order.
    pub(crate) const ALL: [ChangeKind; KINDS] = [
        ChangeKind::Clients,
        ChangeKind::Users,
        ChangeKind::Keys,
        ChangeKind::Revocations,
        ChangeKind::ApiKeys,
    ];

    /// The kind's `state_version` row (see the `change_kinds` and `api_keys`
    /// migrations).
    pub(crate) const fn row_id(self) -> i32 {
        match self {
            ChangeKind::Clients => 2,
            ChangeKind::Users => 3,
            ChangeKind::Keys => 4,
            ChangeKind::Revocations => 5,
            ChangeKind::ApiKeys => 6,
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            ChangeKind::Clients => 0,
            ChangeKind::Users => 1,
            ChangeKind::Keys => 2,
            ChangeKind::Revocations => 3,
            ChangeKind::ApiKeys => 4,
        }
    }
}

/// How many kinds there are.
pub(crate) const KINDS: usize = 5;

/// Every kind's counter, as one probe read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Versions([i64; KINDS]);

impl Versions {
    /// The counter of `kind`.
    pub(crate) fn get(&self, kind: ChangeKind) -> i64 {
        self.0[kind.index()]
    }
}

/// A transaction whose change every server reloads: [`Announced::commit`]
/// bumps the kind's counter inside the transaction, so the change and its
/// announcement commit together or not at all. Dropped without a commit (say,
/// when an update matched no row), it rolls back, announcing nothing.
pub(crate) struct Announced {
    txn: DatabaseTransaction,
    kind: ChangeKind,
    /// A second kind the change touches, such as the API keys that go with a
    /// deleted client.
    also: Option<ChangeKind>,
}

impl Announced {
    /// Begins a transaction that will announce a change of `kind`.
    pub(crate) async fn begin(
        db: &DatabaseConnection,
        kind: ChangeKind,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            txn: db.begin().await?,
            kind,
            also: None,
        })
    }

    /// Announces a change of `kind` too.
    pub(crate) fn also(self, kind: ChangeKind) -> Self {
        Self {
            also: Some(kind),
            ..self
        }
    }

    /// The transaction to write in.
    pub(crate) fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Bumps the kind's counter (and the other's) and commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        bump(&self.txn, self.kind).await?;
        if let Some(also) = self.also {
            bump(&self.txn, also).await?;
        }
        Ok(self.txn.commit().await?)
    }

    /// Commits without bumping: what was written turned out to change nothing
    /// that servers hold in memory.
    pub(crate) async fn commit_unannounced(self) -> Result<(), StoreError> {
        Ok(self.txn.commit().await?)
    }
}

/// Moves `kind`'s counter so that every server reloads that kind. Runs inside
/// the transaction of the change it announces.
async fn bump(conn: &impl ConnectionTrait, kind: ChangeKind) -> Result<(), StoreError> {
    add(conn, kind, 1).await
}

/// Takes back a [`bump_returning`] in the same transaction, when it turned out
/// to announce nothing: the row lock is still held, so no one saw the value.
pub(crate) async fn unbump(
    conn: &impl ConnectionTrait,
    kind: ChangeKind,
) -> Result<(), StoreError> {
    add(conn, kind, -1).await
}

async fn add(conn: &impl ConnectionTrait, kind: ChangeKind, step: i64) -> Result<(), StoreError> {
    state_version::Entity::update_many()
        .col_expr(
            state_version::Column::Version,
            Expr::col(state_version::Column::Version).add(step),
        )
        .filter(state_version::Column::Id.eq(kind.row_id()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Bumps `kind`'s counter and returns its new value, with one
/// `UPDATE … RETURNING`.
///
/// Revocations are synced incrementally, and this is what makes that sound.
/// The update takes the counter row's write lock, which the transaction holds
/// until it commits (PostgreSQL row lock; SQLite's one write lock), so
/// revocation transactions run their bump-to-commit stretch one at a time and
/// commit in counter order: the one that got V commits before any other can
/// get V + 1, and one that rolls back leaves the counter where it was, so each
/// value is the stamp of at most one committed transaction. The transaction
/// stamps its revocation rows with V. A server that reads the committed
/// counter V has therefore every row stamped ≤ V already committed, and
/// loading `last < seq ≤ V` misses nothing and reads nothing twice. (A
/// sequence or serial column would not do: its values are handed out at
/// insert, but commit in any order, so `seq > last` could skip a row that
/// commits late.)
pub(crate) async fn bump_returning(
    conn: &impl ConnectionTrait,
    kind: ChangeKind,
) -> Result<i64, StoreError> {
    let statement = Query::update()
        .table(state_version::Entity)
        .value(
            state_version::Column::Version,
            Expr::col(state_version::Column::Version).add(1),
        )
        .and_where(Expr::col(state_version::Column::Id).eq(kind.row_id()))
        .returning_col(state_version::Column::Version)
        .to_owned();
    let row = conn
        .query_one(&statement)
        .await?
        .ok_or_else(|| missing(kind))?;
    Ok(row.try_get::<i64>("", "version")?)
}

/// Reads every kind's counter in one query.
pub(crate) async fn read_versions(conn: &impl ConnectionTrait) -> Result<Versions, StoreError> {
    let rows = state_version::Entity::find().all(conn).await?;
    let mut versions = [0; KINDS];
    for kind in ChangeKind::ALL {
        versions[kind.index()] = rows
            .iter()
            .find(|row| row.id == kind.row_id())
            .map(|row| row.version)
            .ok_or_else(|| missing(kind))?;
    }
    Ok(Versions(versions))
}

fn missing(kind: ChangeKind) -> StoreError {
    StoreError::Other(format!("state_version row {} ({kind:?}) is missing", kind.row_id()).into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::SeaStore;

    #[tokio::test]
    async fn announced_changes_bump_their_kind_only_when_they_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SeaStore::open(&url, 2, None).await.unwrap();
        let before = read_versions(store.db()).await.unwrap();

        let dropped = Announced::begin(store.db(), ChangeKind::Users)
            .await
            .unwrap();
        bump(dropped.txn(), ChangeKind::Keys).await.unwrap();
        drop(dropped);
        Announced::begin(store.db(), ChangeKind::Keys)
            .await
            .unwrap()
            .commit_unannounced()
            .await
            .unwrap();
        assert_eq!(read_versions(store.db()).await.unwrap(), before);

        Announced::begin(store.db(), ChangeKind::Users)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        let after = read_versions(store.db()).await.unwrap();
        for kind in ChangeKind::ALL {
            let step = i64::from(kind == ChangeKind::Users);
            assert_eq!(after.get(kind), before.get(kind) + step, "{kind:?}");
        }
    }
}
