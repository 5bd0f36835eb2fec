//! sea-orm entities, one file per table. Only `store/` sees them.

pub mod access_token;
pub mod client;
pub mod refresh_token;
pub mod revocation;
pub mod signing_key;
pub mod state_version;
pub mod user;
