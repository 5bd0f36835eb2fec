//! Opening the application's state: the database (migrated) and the store.

use crate::config::Config;
use crate::oauth::storage::StoreError;
use crate::store::SeaStore;

/// Connects to the configured database, applies pending migrations and wraps it
/// in a store. Both `serve` and every management command start here.
pub(crate) async fn open_store(config: &Config) -> Result<SeaStore, StoreError> {
    SeaStore::open(
        &config.database_url,
        config.database_max_connections,
        config.master_key.clone(),
    )
    .await
}
