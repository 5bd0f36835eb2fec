//! Opening the application's state: the database (migrated) and the store.

use crate::config::Config;
use crate::oauth::storage::StoreError;
use crate::store::{SeaStore, connect, migrate};

/// Connects to the configured database, applies pending migrations and wraps it
/// in a store. Both `serve` and every management command start here.
pub async fn open_store(config: &Config) -> Result<SeaStore, StoreError> {
    let db = connect(&config.database_url, config.database_max_connections).await?;
    migrate(&db).await?;
    Ok(SeaStore::new(
        db,
        &config.database_url,
        config.master_key.clone(),
    ))
}
