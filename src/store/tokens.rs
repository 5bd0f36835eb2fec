//! Refresh tokens, opaque access tokens and revocations.

use std::collections::HashSet;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

use super::SeaStore;
use super::changes::{ChangeKind, bump_returning, unbump};
use super::entities::{access_token, refresh_token, revocation};
use super::retry::retrying;
use crate::clock;
use crate::oauth::model::{
    AccessClaims, NewRefreshToken, OpaqueAccessRecord, RefreshRecord, RefreshSuccessor, UnixTime,
};
use crate::oauth::scope::ScopeSet;
use crate::oauth::storage::{AccessTokenStore, RefreshTokenStore, StoreError};

/// The head of an `INSERT` of a whole refresh-token row, for the statements
/// that build the row from another one (`exchange.rs`, `codes.rs`). A macro,
/// so that they can stay `concat!` literals.
macro_rules! insert_refresh_token {
    () => {
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, username, \
scope, grant_scope, issued_at, expires_at, used_at, revoked, access_jti, access_expires_at, \
parent_hash) "
    };
}
pub(super) use insert_refresh_token;

pub(super) fn scope(text: &str) -> Result<ScopeSet, StoreError> {
    ScopeSet::parse(text).map_err(|err| StoreError::Other(err.description().into()))
}

pub(super) fn refresh_to_domain(row: refresh_token::Model) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        scope: scope(&row.scope)?,
        grant_scope: scope(&row.grant_scope)?,
        token_hash: row.token_hash,
        family_id: row.family_id,
        client_id: row.client_id,
        user_id: row.user_id,
        username: row.username,
        issued_at: row.issued_at,
        expires_at: row.expires_at,
        used_at: row.used_at,
        revoked: row.revoked,
    })
}

pub(super) fn refresh_row(
    token: &NewRefreshToken,
    parent_hash: Option<&str>,
) -> refresh_token::ActiveModel {
    let record = &token.record;
    refresh_token::ActiveModel {
        token_hash: Set(record.token_hash.clone()),
        family_id: Set(record.family_id.clone()),
        client_id: Set(record.client_id.clone()),
        user_id: Set(record.user_id.clone()),
        username: Set(record.username.clone()),
        scope: Set(record.scope.to_string()),
        grant_scope: Set(record.grant_scope.to_string()),
        issued_at: Set(record.issued_at),
        expires_at: Set(record.expires_at),
        used_at: Set(None),
        revoked: Set(false),
        access_jti: Set(token.access_jti.clone()),
        access_expires_at: Set(token.access_expires_at),
        parent_hash: Set(parent_hash.map(str::to_owned)),
    }
}

/// The revocations of `revoked` not recorded yet. Those recorded already need
/// no write and no turn at the revocations counter's lock: a stream of no-op
/// revocations must not hold up the real ones.
///
/// On SQLite, call it outside a transaction or once the transaction has
/// written: a transaction that reads first and then writes fails at once
/// (`SQLITE_BUSY_SNAPSHOT`) when another process wrote in between.
async fn unrecorded<'a>(
    conn: &impl ConnectionTrait,
    revoked: &'a [(String, UnixTime)],
) -> Result<Vec<&'a (String, UnixTime)>, StoreError> {
    if revoked.is_empty() {
        return Ok(Vec::new());
    }
    let recorded: HashSet<String> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Jti)
        .filter(revocation::Column::Jti.is_in(revoked.iter().map(|(jti, _)| jti.as_str())))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    Ok(revoked
        .iter()
        .filter(|(jti, _)| !recorded.contains(jti))
        .collect())
}

/// Inserts revocations, ignoring ones already recorded, and returns how many
/// were new. They are stamped with the revocations counter, bumped first (so
/// the transaction holds the counter's lock from here to its commit; see
/// `changes::bump_returning`); when every one was recorded already (by a
/// concurrent transaction) the bump is taken back, so that replicas have
/// nothing to read.
async fn insert_revocations(
    conn: &impl ConnectionTrait,
    revoked: &[&(String, UnixTime)],
) -> Result<u64, StoreError> {
    if revoked.is_empty() {
        return Ok(0);
    }
    let seq = bump_returning(conn, ChangeKind::Revocations).await?;
    let rows = revoked
        .iter()
        .map(|(jti, expires_at)| revocation::ActiveModel {
            jti: Set(jti.clone()),
            expires_at: Set(*expires_at),
            seq: Set(seq),
        });
    let inserted = revocation::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(revocation::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted == 0 {
        unbump(conn, ChangeKind::Revocations).await?;
    }
    Ok(inserted)
}

impl RefreshTokenStore for SeaStore {
    async fn insert_refresh(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            refresh_token::Entity::insert(refresh_row(token, None))
                .exec_without_returning(turn.db())
                .await?;
            Ok(())
        })
        .await
    }

    async fn find_refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        refresh_token::Entity::find_by_id(token_hash.to_owned())
            .one(self.db())
            .await?
            .map(refresh_to_domain)
            .transpose()
    }

    async fn rotate_refresh(
        &self,
        used_hash: &str,
        now: UnixTime,
        next: &NewRefreshToken,
    ) -> Result<bool, StoreError> {
        retrying(|| async {
            let turn = self.write_turn().await;
            let txn = turn.db().begin().await?;
            // The single-use rule lives in this one conditional UPDATE: of any
            // number of concurrent requests, on any number of replicas, exactly
            // one sees a row affected; the row lock makes a concurrent family
            // revocation either land first (and this update match nothing) or
            // wait for this commit. A loser under SERIALIZABLE fails instead,
            // and its retry sees the token used.
            let marked = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::UsedAt, Some(now).into())
                .filter(refresh_token::Column::TokenHash.eq(used_hash))
                .filter(refresh_token::Column::UsedAt.is_null())
                .filter(refresh_token::Column::Revoked.eq(false))
                .exec(&txn)
                .await?;
            if marked.rows_affected != 1 {
                return Ok(false);
            }
            refresh_token::Entity::insert(refresh_row(next, Some(used_hash)))
                .exec_without_returning(&txn)
                .await?;
            txn.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn exchange_refresh(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        self.exchange_grouped(used_hash, client_id, successor).await
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let revoked = retrying(|| async {
            let turn = self.write_turn().await;
            let txn = turn.db().begin().await?;
            let marked = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::Revoked, true.into())
                .filter(refresh_token::Column::FamilyId.eq(family_id))
                .filter(refresh_token::Column::Revoked.eq(false))
                .exec(&txn)
                .await?
                .rows_affected;
            let access: Vec<(String, UnixTime)> = refresh_token::Entity::find()
                .filter(refresh_token::Column::FamilyId.eq(family_id))
                .filter(refresh_token::Column::AccessExpiresAt.gt(now))
                .all(&txn)
                .await?
                .into_iter()
                .map(|row| (row.access_jti, row.access_expires_at))
                .collect();
            // The update above made this a writing transaction, so reading
            // here is safe on SQLite too (see `unrecorded`).
            let fresh = unrecorded(&txn, &access).await?;
            let inserted = insert_revocations(&txn, &fresh).await?;
            if marked == 0 && inserted == 0 {
                // Revoked before: nothing to write (the transaction rolls back).
                return Ok(None);
            }
            txn.commit().await?;
            Ok(Some(access))
        })
        .await?;
        let Some(access) = revoked else {
            return Ok(false);
        };
        self.cache()
            .add_revoked(access.iter().map(|(jti, exp)| (jti.as_str(), *exp)));
        Ok(true)
    }
}

impl SeaStore {
    /// The opaque access token with this hash, from the database.
    async fn read_opaque(
        &self,
        token_hash: &str,
    ) -> Result<Option<OpaqueAccessRecord>, StoreError> {
        let Some(row) = access_token::Entity::find_by_id(token_hash.to_owned())
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let claims = AccessClaims {
            scope: scope(&row.scope)?,
            sub: row.user_id.clone().unwrap_or_else(|| row.client_id.clone()),
            jti: row.jti,
            iss: row.issuer,
            aud: row.audience,
            client_id: row.client_id,
            username: row.username,
            user_id: row.user_id,
            iat: row.issued_at,
            nbf: row.issued_at,
            exp: row.expires_at,
        };
        Ok(Some(OpaqueAccessRecord {
            token_hash: row.token_hash,
            claims,
        }))
    }
}

impl AccessTokenStore for SeaStore {
    async fn insert_opaque(&self, token: &OpaqueAccessRecord) -> Result<(), StoreError> {
        let claims = &token.claims;
        let row = access_token::ActiveModel {
            token_hash: Set(token.token_hash.clone()),
            jti: Set(claims.jti.clone()),
            client_id: Set(claims.client_id.clone()),
            user_id: Set(claims.user_id.clone()),
            username: Set(claims.username.clone()),
            scope: Set(claims.scope.to_string()),
            issuer: Set(claims.iss.clone()),
            audience: Set(claims.aud.clone()),
            issued_at: Set(claims.iat),
            expires_at: Set(claims.exp),
        };
        retrying(|| async {
            let turn = self.write_turn().await;
            row.clone().insert(turn.db()).await?;
            Ok(())
        })
        .await
    }

    /// Looked up once, then answered from memory (SPEC §9). A stored token
    /// never changes: its revocation is in the revoked set, its client's and
    /// user's state are checked apart, so a record is remembered until the
    /// token expires (and a while after, so that an expired token presented
    /// again costs no lookup either). An unknown value is remembered as
    /// unknown for a while: a random 256-bit value cannot be presented before
    /// it is issued, and oauthd stores a token before it hands it out.
    async fn find_opaque(
        &self,
        token_hash: &str,
    ) -> Result<Option<OpaqueAccessRecord>, StoreError> {
        let now = clock::now();
        let until_after_expiry = |record: &OpaqueAccessRecord| {
            record
                .claims
                .exp
                .max(now.saturating_add(super::remembered::UNKNOWN_LIFETIME))
        };
        self.cache()
            .opaque_tokens
            .lookup(
                token_hash,
                now,
                "access_token",
                self.read_opaque(token_hash),
                until_after_expiry,
            )
            .await
    }

    async fn revoke_access(&self, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        let revoked = [(jti.to_owned(), expires_at)];
        let fresh = unrecorded(self.db(), &revoked).await?;
        if fresh.is_empty() {
            return Ok(false);
        }
        let inserted = retrying(|| async {
            let turn = self.write_turn().await;
            let txn = turn.db().begin().await?;
            let inserted = insert_revocations(&txn, &fresh).await?;
            if inserted > 0 {
                txn.commit().await?;
            }
            Ok(inserted)
        })
        .await?;
        if inserted == 0 {
            // Revoked before, maybe by another replica: nothing was written.
            return Ok(false);
        }
        self.cache().add_revoked([(jti, expires_at)]);
        Ok(true)
    }

    fn is_revoked(&self, jti: &str) -> bool {
        self.cache().is_revoked(jti)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sea_orm::ConnectionTrait as _;

    use super::*;
    use crate::oauth::model::{GrantType, PkceRule};
    use crate::store::ClientSpec;

    #[tokio::test]
    async fn an_opaque_token_is_looked_up_once_and_so_is_an_unknown_value() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SeaStore::open(&url, 2, None).await.unwrap();
        let spec = ClientSpec {
            name: "svc".into(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("read").unwrap(),
            access_token_ttl: None,
            public: false,
            redirect_uris: Vec::new(),
            skip_consent: false,
            pkce: PkceRule::Required,
        };
        let now = clock::now();
        let client = store.create_client(spec, now).await.unwrap().client;
        let record = OpaqueAccessRecord {
            token_hash: "hash-1".into(),
            claims: AccessClaims {
                jti: "jti-1".into(),
                iss: "https://issuer.example".into(),
                sub: client.id.clone(),
                aud: "https://issuer.example".into(),
                client_id: client.id.clone(),
                username: None,
                user_id: None,
                scope: ScopeSet::parse("read").unwrap(),
                iat: now,
                nbf: now,
                exp: now + 3600,
            },
        };
        store.insert_opaque(&record).await.unwrap();
        assert_eq!(store.find_opaque("unknown").await.unwrap(), None);
        assert_eq!(
            store.find_opaque("hash-1").await.unwrap().as_ref(),
            Some(&record)
        );

        // Gone behind oauthd's back, yet answered: by memory. (A row
        // inserted behind its back for the unknown hash would not be seen
        // either, for the minute an unknown value is remembered.)
        store
            .db()
            .execute_unprepared("DELETE FROM access_tokens")
            .await
            .unwrap();
        assert_eq!(store.find_opaque("hash-1").await.unwrap(), Some(record));
        assert_eq!(store.find_opaque("unknown").await.unwrap(), None);
    }
}
