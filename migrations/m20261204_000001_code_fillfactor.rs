//! On PostgreSQL, authorization codes are stored with room left on each page
//! (`fillfactor`), so that the one update that redeems a code stays on the
//! code's page.
//!
//! Every code row is updated exactly once, and that update more than half
//! again its size (the ids and expiries of what the redemption issued). On a
//! full page the new row version goes to another page, and every index of the
//! table gets an entry for it; with room on its own page PostgreSQL makes it
//! a heap-only tuple, and no index is written. Under the bench's code exchange
//! at the default fill, 38 % of redemptions took the long way; refresh tokens,
//! whose used row lies in the recent pages being filled, took it for 2 %.
//! Codes live minutes before the purge takes them, so the larger table costs
//! little. SQLite has no such setting: its rows are rewritten in place.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Percent of each page that inserts fill. A code takes about 270 bytes of
/// its page and its redeemed version about 410 more: at 35 % a page holds
/// about ten codes and room for all ten redeemed.
const CODE_FILLFACTOR: u8 = 35;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE authorization_codes SET (fillfactor = {CODE_FILLFACTOR})"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE authorization_codes RESET (fillfactor)")
            .await?;
        Ok(())
    }
}
