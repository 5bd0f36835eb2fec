//! sea-orm entities, one file per table. Only `store/` sees them.

pub(crate) mod access_token;
pub(crate) mod api_key;
pub(crate) mod authorization_code;
pub(crate) mod client;
pub(crate) mod consent;
pub(crate) mod refresh_token;
pub(crate) mod revocation;
pub(crate) mod session;
pub(crate) mod signing_key;
pub(crate) mod state_version;
pub(crate) mod user;
