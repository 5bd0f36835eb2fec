//! The sea-orm-migration migrator. One file per migration; a released migration
//! is never edited. The server applies pending migrations at start, and so does
//! every management command.

use sea_orm_migration::prelude::*;

mod m20261121_000001_initial;
mod m20261122_000001_refresh_parent;
mod m20261201_000001_change_kinds;
mod m20261203_000001_api_keys;
mod m20261203_000002_browser_flows;
mod m20261203_000003_purge_indexes;
mod m20261204_000001_code_fillfactor;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_initial::Migration),
            Box::new(m20261122_000001_refresh_parent::Migration),
            Box::new(m20261201_000001_change_kinds::Migration),
            Box::new(m20261203_000001_api_keys::Migration),
            Box::new(m20261203_000002_browser_flows::Migration),
            Box::new(m20261203_000003_purge_indexes::Migration),
            Box::new(m20261204_000001_code_fillfactor::Migration),
        ]
    }
}
