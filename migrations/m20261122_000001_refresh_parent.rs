//! Refresh tokens remember the token they replaced (`parent_hash`), and on SQLite
//! inserting the replacement marks the parent used in the same statement.
//!
//! The trigger lets a SQLite refresh be one statement, one round trip to
//! SQLite's worker thread instead of the four a transaction takes; see
//! `src/store/exchange.rs`. PostgreSQL keeps its row-locking transaction, which
//! stays exact across replicas, and gets no trigger.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const CREATE_TRIGGER: &str = "\
CREATE TRIGGER refresh_tokens_use_parent AFTER INSERT ON refresh_tokens
WHEN NEW.parent_hash IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET used_at = NEW.issued_at WHERE token_hash = NEW.parent_hash;
END";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(string_null(RefreshTokens::ParentHash))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared(CREATE_TRIGGER)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared("DROP TRIGGER IF EXISTS refresh_tokens_use_parent")
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .drop_column(RefreshTokens::ParentHash)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ParentHash,
}
