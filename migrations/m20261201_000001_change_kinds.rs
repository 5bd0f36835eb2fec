//! Change tracking split by kind, and revocations ordered for incremental sync.
//!
//! `state_version` gets one row per kind of state servers keep in memory
//! (2 clients, 3 users, 4 keys, 5 revocations; see `src/store/changes.rs`), so
//! that a revocation no longer makes every server reload its clients, users and
//! keys. Row 1, the single counter before, stays but is no longer used.
//!
//! `revocations.seq` is the value of the revocations counter that the
//! revoking transaction set. Servers load only the rows stamped after the last
//! value they saw, in pages in (seq, jti) order, hence the index. Rows from
//! before this migration get 0, which every server loads on its first sync.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The rows of the kinds, as `src/store/changes.rs` numbers them.
const KIND_ROWS: [i32; 4] = [2, 3, 4, 5];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Revocations::Table)
                    .add_column(big_integer(Revocations::Seq).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revocations_seq")
                    .table(Revocations::Table)
                    .col(Revocations::Seq)
                    .col(Revocations::Jti)
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert()
            .into_table(StateVersion::Table)
            .columns([StateVersion::Id, StateVersion::Version])
            .to_owned();
        for id in KIND_ROWS {
            seed.values([id.into(), 0i64.into()])
                .map_err(|err| DbErr::Custom(err.to_string()))?;
        }
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let unseed = Query::delete()
            .from_table(StateVersion::Table)
            .and_where(Expr::col(StateVersion::Id).is_in(KIND_ROWS))
            .to_owned();
        manager.exec_stmt(unseed).await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_revocations_seq")
                    .table(Revocations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Revocations::Table)
                    .drop_column(Revocations::Seq)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Jti,
    Seq,
}

#[derive(DeriveIden)]
enum StateVersion {
    Table,
    Id,
    Version,
}
