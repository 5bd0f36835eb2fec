//! API keys (SPEC §8), and the change counter that keeps every server's memory
//! of them in step.
//!
//! A key is stored only as its hash (`key_hash`, unique: it is what a presented
//! key is looked up by), with the last four characters as `hint`. It belongs to
//! a client and goes with it: deleting the client deletes its keys. `client_id`
//! is indexed for `apikey list --client` and for that cascade. `last_used_at`
//! is written at most once a minute per key by each server, never per request.
//!
//! `state_version` gets row 6 for the kind `ApiKeys` (`src/store/changes.rs`):
//! every change of a key bumps it, so that a server that answers a key from
//! memory drops that memory within a second of a revocation or rotation.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The row of the `ApiKeys` kind, as `src/store/changes.rs` numbers it.
const API_KEYS_ROW: i32 = 6;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(string(ApiKeys::KeyId).primary_key())
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(string(ApiKeys::ClientId))
                    .col(string(ApiKeys::Name))
                    .col(text(ApiKeys::Scope))
                    .col(big_integer(ApiKeys::CreatedAt))
                    .col(big_integer(ApiKeys::ExpiresAt))
                    .col(boolean(ApiKeys::Revoked))
                    .col(string(ApiKeys::Hint))
                    .col(big_integer_null(ApiKeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_client_id")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::ClientId)
                    .to_owned(),
            )
            .await?;
        let seed = Query::insert()
            .into_table(StateVersion::Table)
            .columns([StateVersion::Id, StateVersion::Version])
            .values([API_KEYS_ROW.into(), 0i64.into()])
            .map_err(|err| DbErr::Custom(err.to_string()))?
            .to_owned();
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let unseed = Query::delete()
            .from_table(StateVersion::Table)
            .and_where(Expr::col(StateVersion::Id).eq(API_KEYS_ROW))
            .to_owned();
        manager.exec_stmt(unseed).await?;
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    KeyId,
    KeyHash,
    ClientId,
    Name,
    Scope,
    CreatedAt,
    ExpiresAt,
    Revoked,
    Hint,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
}

#[derive(DeriveIden)]
enum StateVersion {
    Table,
    Id,
    Version,
}
