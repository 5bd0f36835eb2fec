//! Clients: the `ClientStore` the core reads (from the cache) and the management
//! operations the CLI runs.

use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    UpdateMany,
};

use super::SeaStore;
use super::changes::{Announced, ChangeKind};
use super::entities::client;
use super::retry::retrying;
use crate::oauth::model::{
    Client, GrantType, PkceRule, UnixTime, longest_access_token_ttl, scopes_of_enabled,
};
use crate::oauth::scope::ScopeSet;
use crate::oauth::storage::{ClientCatalog, ClientStore, StoreError};
use crate::tokens::credential::{self, CredentialKind};
use crate::tokens::secret::{hash_secret, new_id};

/// What `client create` asks for.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Display name.
    pub name: String,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Allowed scopes.
    pub scopes: ScopeSet,
    /// Access-token lifetime override, seconds.
    pub access_token_ttl: Option<i64>,
    /// A public client has no secret.
    pub public: bool,
    /// Registered redirect URIs (SPEC §7), already checked.
    pub redirect_uris: Vec<String>,
    /// Never show the consent page.
    pub skip_consent: bool,
    /// Whether PKCE is required.
    pub pkce: PkceRule,
}

/// What `client update` changes: each `Some` field replaces the stored value,
/// each `None` leaves it as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientUpdate {
    /// A new display name.
    pub name: Option<String>,
    /// New grant types, replacing the old.
    pub grant_types: Option<Vec<GrantType>>,
    /// New scopes, replacing the old.
    pub scopes: Option<ScopeSet>,
    /// A new access-token lifetime, seconds.
    pub access_token_ttl: Option<i64>,
    /// New redirect URIs (already checked, and at least one), replacing the
    /// whole list.
    pub redirect_uris: Option<Vec<String>>,
    /// Whether to skip the consent page from now on.
    pub skip_consent: Option<bool>,
    /// A new PKCE rule.
    pub pkce: Option<PkceRule>,
}

impl ClientUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        let Self {
            name,
            grant_types,
            scopes,
            access_token_ttl,
            redirect_uris,
            skip_consent,
            pkce,
        } = self;
        name.is_none()
            && grant_types.is_none()
            && scopes.is_none()
            && access_token_ttl.is_none()
            && redirect_uris.is_none()
            && skip_consent.is_none()
            && pkce.is_none()
    }

    /// `client` as it will be once the update is written, for checking the
    /// result against the registration rules before writing it.
    pub fn applied_to(&self, mut client: Client) -> Client {
        if let Some(name) = &self.name {
            client.name.clone_from(name);
        }
        if let Some(grant_types) = &self.grant_types {
            client.grant_types.clone_from(grant_types);
        }
        if let Some(scopes) = &self.scopes {
            client.scopes.clone_from(scopes);
        }
        if let Some(ttl) = self.access_token_ttl {
            client.access_token_ttl = Some(ttl);
        }
        if let Some(uris) = &self.redirect_uris {
            client.redirect_uris.clone_from(uris);
        }
        client.skip_consent = self.skip_consent.unwrap_or(client.skip_consent);
        client.pkce = self.pkce.unwrap_or(client.pkce);
        client
    }
}

/// A client as management commands show it.
#[derive(Debug, Clone)]
pub struct ClientView {
    /// The client.
    pub client: Client,
    /// The secret, only right after it was generated.
    pub secret: Option<String>,
    /// Creation time.
    pub created_at: UnixTime,
}

pub(super) fn to_domain(row: client::Model) -> Result<Client, String> {
    let grant_types = row
        .grant_types
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<GrantType>, _>>()?;
    let scopes = ScopeSet::parse(&row.scopes).map_err(|err| err.description().to_owned())?;
    Ok(Client {
        id: row.client_id,
        name: row.name,
        secret_hash: row.secret_hash,
        grant_types,
        scopes,
        access_token_ttl: row.access_token_ttl,
        enabled: row.enabled,
        redirect_uris: row
            .redirect_uris
            .split(' ')
            .filter(|uri| !uri.is_empty())
            .map(str::to_owned)
            .collect(),
        skip_consent: row.skip_consent,
        pkce: row.pkce.parse()?,
    })
}

fn to_view(row: client::Model, secret: Option<String>) -> Result<ClientView, StoreError> {
    let created_at = row.created_at;
    let client = to_domain(row).map_err(|err| StoreError::Other(err.into()))?;
    Ok(ClientView {
        client,
        secret,
        created_at,
    })
}

/// A new client secret: an `ocs_` credential. Secrets issued before SPEC §5
/// (43 URL-safe characters) keep matching their stored hash until rotated.
fn new_client_secret() -> String {
    credential::mint(CredentialKind::ClientSecret)
}

impl ClientStore for SeaStore {
    async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        match self.cache().client(client_id) {
            Some(client) => Ok(Some(client)),
            None => self.reload_client(client_id).await,
        }
    }

    async fn reload_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let row = client::Entity::find_by_id(client_id.to_owned())
            .one(self.db())
            .await?;
        let client = row
            .map(to_domain)
            .transpose()
            .map_err(|err| StoreError::Other(err.into()))?
            .map(Arc::new);
        self.cache().put_client(client_id, client.clone());
        Ok(client)
    }
}

impl SeaStore {
    /// Registers a client with a generated id and, unless public, a generated
    /// secret (an `ocs_` credential, SPEC §5) that is returned once and stored
    /// only as a hash.
    pub async fn create_client(
        &self,
        spec: ClientSpec,
        now: UnixTime,
    ) -> Result<ClientView, StoreError> {
        let secret = (!spec.public).then(new_client_secret);
        let grant_types: Vec<&str> = spec.grant_types.iter().map(|g| g.as_str()).collect();
        let row = client::ActiveModel {
            client_id: Set(new_id()),
            name: Set(spec.name),
            secret_hash: Set(secret.as_deref().map(hash_secret)),
            grant_types: Set(grant_types.join(" ")),
            scopes: Set(spec.scopes.to_string()),
            access_token_ttl: Set(spec.access_token_ttl),
            enabled: Set(true),
            created_at: Set(now),
            redirect_uris: Set(spec.redirect_uris.join(" ")),
            skip_consent: Set(spec.skip_consent),
            pkce: Set(spec.pkce.as_str().to_owned()),
        };
        let row = retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Clients).await?;
            let row = row.clone().insert(change.txn()).await?;
            change.commit().await?;
            Ok(row)
        })
        .await?;
        to_view(row, secret)
    }

    /// Every client, oldest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientView>, StoreError> {
        client::Entity::find()
            .order_by_asc(client::Column::CreatedAt)
            .order_by_asc(client::Column::ClientId)
            .all(self.db())
            .await?
            .into_iter()
            .map(|row| to_view(row, None))
            .collect()
    }

    /// One client.
    pub async fn show_client(&self, client_id: &str) -> Result<Option<ClientView>, StoreError> {
        client::Entity::find_by_id(client_id.to_owned())
            .one(self.db())
            .await?
            .map(|row| to_view(row, None))
            .transpose()
    }

    /// Enables or disables a client. Returns the client, or `None` if unknown.
    pub async fn set_client_enabled(
        &self,
        client_id: &str,
        enabled: bool,
    ) -> Result<Option<ClientView>, StoreError> {
        let statement = client::Entity::update_many()
            .col_expr(client::Column::Enabled, enabled.into())
            .filter(client::Column::ClientId.eq(client_id));
        if !self.announce_update(statement).await? {
            return Ok(None);
        }
        self.show_client(client_id).await
    }

    /// Writes the fields `update` names, and only those, in one statement,
    /// so that two updates of different fields never undo each other; servers
    /// reload the client within a second. `Ok(None)` if there is no such
    /// client.
    ///
    /// The caller checks `update.applied_to(current)` against the
    /// registration rules first. Checking apart from writing is safe: no
    /// update makes a client public or confidential or empties its redirect
    /// URIs, so nothing another update writes meanwhile can break a rule
    /// this one checked.
    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<Option<ClientView>, StoreError> {
        if update.is_empty() {
            return self.show_client(client_id).await;
        }
        let ClientUpdate {
            name,
            grant_types,
            scopes,
            access_token_ttl,
            redirect_uris,
            skip_consent,
            pkce,
        } = update;
        let mut statement =
            client::Entity::update_many().filter(client::Column::ClientId.eq(client_id));
        if let Some(name) = name {
            statement = statement.col_expr(client::Column::Name, name.into());
        }
        if let Some(grant_types) = grant_types {
            let names: Vec<&str> = grant_types.iter().map(|g| g.as_str()).collect();
            statement = statement.col_expr(client::Column::GrantTypes, names.join(" ").into());
        }
        if let Some(scopes) = scopes {
            statement = statement.col_expr(client::Column::Scopes, scopes.to_string().into());
        }
        if let Some(ttl) = access_token_ttl {
            statement = statement.col_expr(client::Column::AccessTokenTtl, Some(ttl).into());
        }
        if let Some(uris) = redirect_uris {
            statement = statement.col_expr(client::Column::RedirectUris, uris.join(" ").into());
        }
        if let Some(skip_consent) = skip_consent {
            statement = statement.col_expr(client::Column::SkipConsent, skip_consent.into());
        }
        if let Some(pkce) = pkce {
            statement = statement.col_expr(client::Column::Pkce, pkce.as_str().into());
        }
        if !self.announce_update(statement).await? {
            return Ok(None);
        }
        self.show_client(client_id).await
    }

    /// Replaces a confidential client's secret with a new `ocs_` credential in
    /// one statement, whatever form the old one had; the old one stops
    /// working as soon as servers reload (within a second). `Ok(None)` if there is
    /// no such confidential client.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientView>, StoreError> {
        let secret = new_client_secret();
        let statement = client::Entity::update_many()
            .col_expr(
                client::Column::SecretHash,
                Some(hash_secret(&secret)).into(),
            )
            .filter(client::Column::ClientId.eq(client_id))
            .filter(client::Column::SecretHash.is_not_null());
        if !self.announce_update(statement).await? {
            return Ok(None);
        }
        Ok(self.show_client(client_id).await?.map(|view| ClientView {
            secret: Some(secret),
            ..view
        }))
    }

    /// Deletes a client and, by cascade, its refresh and opaque tokens and its
    /// API keys. Its JWTs introspect inactive once servers reload, and servers
    /// forget the keys they remembered. Returns whether it existed.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Clients)
                .await?
                .also(ChangeKind::ApiKeys);
            let deleted = client::Entity::delete_by_id(client_id.to_owned())
                .exec(change.txn())
                .await?;
            if deleted.rows_affected == 0 {
                return Ok(false);
            }
            change.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Runs `statement`, an update of clients, and announces it when it
    /// matched a row; returns whether it did. With none, nothing is written.
    async fn announce_update(
        &self,
        statement: UpdateMany<client::Entity>,
    ) -> Result<bool, StoreError> {
        retrying(|| async {
            let change = Announced::begin(self.db(), ChangeKind::Clients).await?;
            if statement.clone().exec(change.txn()).await?.rows_affected == 0 {
                return Ok(false);
            }
            change.commit().await?;
            Ok(true)
        })
        .await
    }
}

impl ClientCatalog for SeaStore {
    fn known_scopes(&self) -> Vec<String> {
        scopes_of_enabled(self.cache().clients().values().map(|client| &**client))
    }

    fn longest_access_token_ttl(&self, default: i64) -> i64 {
        let clients = self.cache().clients();
        longest_access_token_ttl(clients.values().map(|client| &**client), default)
    }
}
