//! Indexes on `expires_at` for the purge (SPEC §10) of the tables that had
//! none: without them each batch of the purge would scan its whole table.
//! Codes, sessions and revocations were indexed when they were added.
//!
//! On PostgreSQL a plain `CREATE INDEX` blocks writes to its table while it
//! builds: on a table of millions of rows, that is a few seconds once, at the
//! first start of this version.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const INDEXES: [(&str, Tables, Columns); 3] = [
    (
        "idx_refresh_tokens_expires_at",
        Tables::RefreshTokens,
        Columns::ExpiresAt,
    ),
    (
        "idx_access_tokens_expires_at",
        Tables::AccessTokens,
        Columns::ExpiresAt,
    ),
    (
        "idx_api_keys_expires_at",
        Tables::ApiKeys,
        Columns::ExpiresAt,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tables {
    RefreshTokens,
    AccessTokens,
    ApiKeys,
}

#[derive(DeriveIden, Clone, Copy)]
enum Columns {
    ExpiresAt,
}
