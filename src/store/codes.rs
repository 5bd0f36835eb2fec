//! Authorization codes (SPEC §7): stored by hash, redeemed once.
//!
//! Single use is a conditional update that only an unused, unexpired code of
//! the presenting client matches: of any number of concurrent redemptions, on
//! any number of replicas, exactly one sees its row updated. On PostgreSQL
//! each redemption is its own transaction. On SQLite, which writes one
//! statement at a time, redemptions waiting for the writer are grouped
//! (`write_queue.rs`): one `UPDATE … FROM (VALUES …) RETURNING` marks every
//! code of the batch it can, and one insert stores their refresh tokens, in
//! one transaction.

use std::collections::HashSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};
use tokio::sync::oneshot;

use super::SeaStore;
use super::entities::{authorization_code, refresh_token};
use super::tokens::{refresh_row, scope};
use super::write_queue::{WriteQueue, first_of_each};
use crate::oauth::model::{AuthorizationCodeRecord, CodeRedemption, NewRefreshToken, UnixTime};
use crate::oauth::storage::{AuthorizationCodeStore, StoreError};

type Answer = Result<bool, StoreError>;

/// A redemption waiting for the writer.
pub(super) struct Pending {
    code_hash: String,
    now: UnixTime,
    issued: CodeRedemption,
    refresh: Option<NewRefreshToken>,
    reply: oneshot::Sender<Answer>,
}

/// SQLite's redemptions waiting for a statement.
pub(super) type RedemptionQueue = WriteQueue<Pending>;

fn to_domain(row: authorization_code::Model) -> Result<AuthorizationCodeRecord, StoreError> {
    let issued = row.access_jti.map(|access_jti| CodeRedemption {
        access_jti,
        access_expires_at: row.access_expires_at.unwrap_or(row.expires_at),
        family_id: row.family_id,
    });
    Ok(AuthorizationCodeRecord {
        scope: scope(&row.scope)?,
        code_hash: row.code_hash,
        client_id: row.client_id,
        user_id: row.user_id,
        username: row.username,
        redirect_uri: row.redirect_uri,
        code_challenge: row.code_challenge,
        issued_at: row.created_at,
        expires_at: row.expires_at,
        used_at: row.used_at,
        issued,
    })
}

impl AuthorizationCodeStore for SeaStore {
    async fn insert_code(&self, code: &AuthorizationCodeRecord) -> Result<(), StoreError> {
        let row = authorization_code::ActiveModel {
            code_hash: Set(code.code_hash.clone()),
            client_id: Set(code.client_id.clone()),
            user_id: Set(code.user_id.clone()),
            username: Set(code.username.clone()),
            redirect_uri: Set(code.redirect_uri.clone()),
            scope: Set(code.scope.to_string()),
            code_challenge: Set(code.code_challenge.clone()),
            created_at: Set(code.issued_at),
            expires_at: Set(code.expires_at),
            used_at: Set(None),
            family_id: Set(None),
            access_jti: Set(None),
            access_expires_at: Set(None),
        };
        let turn = self.write_turn().await;
        authorization_code::Entity::insert(row)
            .exec_without_returning(turn.db())
            .await?;
        Ok(())
    }

    async fn find_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCodeRecord>, StoreError> {
        authorization_code::Entity::find_by_id(code_hash.to_owned())
            .one(self.db())
            .await?
            .map(to_domain)
            .transpose()
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        issued: &CodeRedemption,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<bool, StoreError> {
        let Some(queue) = self.redemptions() else {
            return self.redeem_alone(code_hash, now, issued, refresh).await;
        };
        let (reply, answer) = oneshot::channel();
        let start_drain = queue.push(Pending {
            code_hash: code_hash.to_owned(),
            now,
            issued: issued.clone(),
            refresh: refresh.cloned(),
            reply,
        });
        if start_drain {
            // A task of its own: a request that gives up must not take the
            // others' statement down with it.
            tokio::spawn(self.clone().drain_redemptions());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Other("code redemption was dropped".into())))
    }
}

impl SeaStore {
    /// One redemption in a transaction of its own (PostgreSQL).
    async fn redeem_alone(
        &self,
        code_hash: &str,
        now: UnixTime,
        issued: &CodeRedemption,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<bool, StoreError> {
        let turn = self.write_turn().await;
        let txn = turn.db().begin().await?;
        let marked = authorization_code::Entity::update_many()
            .col_expr(authorization_code::Column::UsedAt, Some(now).into())
            .col_expr(
                authorization_code::Column::AccessJti,
                Some(issued.access_jti.clone()).into(),
            )
            .col_expr(
                authorization_code::Column::AccessExpiresAt,
                Some(issued.access_expires_at).into(),
            )
            .col_expr(
                authorization_code::Column::FamilyId,
                issued.family_id.clone().into(),
            )
            .filter(authorization_code::Column::CodeHash.eq(code_hash))
            .filter(authorization_code::Column::UsedAt.is_null())
            .filter(authorization_code::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            return Ok(false);
        }
        if let Some(token) = refresh {
            refresh_token::Entity::insert(refresh_row(token, None))
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    async fn drain_redemptions(self) {
        let Some(queue) = self.redemptions() else {
            return;
        };
        loop {
            let turn = self.write_turn().await;
            let Some(batch) = queue.next_batch() else {
                return;
            };
            // A code presented twice at once is spent by its first
            // redemption; the repeat lost the race.
            let (batch, repeats) = first_of_each(batch, |pending| &pending.code_hash);
            for repeat in repeats {
                let _ = repeat.reply.send(Ok(false));
            }
            let result = redeem_batch(turn.db(), &batch).await;
            drop(turn);
            match result {
                Ok(redeemed) => {
                    for pending in batch {
                        let won = redeemed.contains(&pending.code_hash);
                        let _ = pending.reply.send(Ok(won));
                    }
                }
                Err(error) => {
                    for pending in batch {
                        let _ = pending.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

const REDEEM_HEAD: &str = "\
UPDATE authorization_codes SET used_at = wanted.column2, access_jti = wanted.column3, \
access_expires_at = wanted.column4, family_id = wanted.column5 FROM (VALUES ";

const REDEEM_ROW: &str = "(?, ?, ?, ?, ?)";

const REDEEM_TAIL: &str = ") AS wanted \
WHERE authorization_codes.code_hash = wanted.column1 \
AND authorization_codes.used_at IS NULL AND authorization_codes.expires_at > wanted.column2 \
RETURNING authorization_codes.code_hash";

/// Marks every code of `batch` that is still redeemable and stores the
/// refresh tokens of those, in one transaction; returns the codes marked.
async fn redeem_batch(
    db: &sea_orm::DatabaseConnection,
    batch: &[Pending],
) -> Result<HashSet<String>, StoreError> {
    let txn = db.begin().await?;
    let rows = vec![REDEEM_ROW; batch.len()].join(", ");
    let values = batch.iter().flat_map(|pending| {
        [
            Value::from(pending.code_hash.clone()),
            pending.now.into(),
            pending.issued.access_jti.clone().into(),
            pending.issued.access_expires_at.into(),
            pending.issued.family_id.clone().into(),
        ]
    });
    let statement = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!("{REDEEM_HEAD}{rows}{REDEEM_TAIL}"),
        values,
    );
    let redeemed: HashSet<String> = txn
        .query_all_raw(statement)
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "code_hash"))
        .collect::<Result<_, _>>()?;
    let refresh_rows: Vec<_> = batch
        .iter()
        .filter(|pending| redeemed.contains(&pending.code_hash))
        .filter_map(|pending| pending.refresh.as_ref())
        .map(|token| refresh_row(token, None))
        .collect();
    if !refresh_rows.is_empty() {
        refresh_token::Entity::insert_many(refresh_rows)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(redeemed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::oauth::model::{GrantType, PkceRule, RefreshRecord};
    use crate::oauth::scope::ScopeSet;
    use crate::oauth::storage::RefreshTokenStore as _;
    use crate::store::{ClientSpec, UserSpec};

    const NOW: UnixTime = 1_800_000_000;

    async fn store_with_code_owner() -> (tempfile::TempDir, SeaStore, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = SeaStore::open(&url, 4, None).await.unwrap();
        let spec = ClientSpec {
            name: "web".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: ScopeSet::parse("read").unwrap(),
            access_token_ttl: None,
            public: false,
            redirect_uris: vec!["https://app.example/cb".into()],
            skip_consent: true,
            pkce: PkceRule::Required,
        };
        let client = store.create_client(spec, NOW).await.unwrap().client.id;
        let user = UserSpec {
            username: "ann".into(),
            email: None,
            phone: None,
            password_hash: "unused".into(),
        };
        let user = store.create_user(user, NOW).await.unwrap().id;
        (dir, store, client, user)
    }

    fn code(n: usize, client: &str, user: &str) -> AuthorizationCodeRecord {
        AuthorizationCodeRecord {
            code_hash: format!("code-{n}"),
            client_id: client.into(),
            user_id: user.into(),
            username: "ann".into(),
            redirect_uri: None,
            scope: ScopeSet::parse("read").unwrap(),
            code_challenge: None,
            issued_at: NOW,
            expires_at: NOW + 60,
            used_at: None,
            issued: None,
        }
    }

    fn refresh(n: usize, attempt: usize, client: &str, user: &str) -> NewRefreshToken {
        NewRefreshToken {
            record: RefreshRecord {
                token_hash: format!("refresh-{n}-{attempt}"),
                family_id: format!("family-{n}-{attempt}"),
                client_id: client.into(),
                user_id: Some(user.into()),
                username: Some("ann".into()),
                scope: ScopeSet::parse("read").unwrap(),
                grant_scope: ScopeSet::parse("read").unwrap(),
                issued_at: NOW,
                expires_at: NOW + 3600,
                used_at: None,
                revoked: false,
            },
            access_jti: format!("jti-{n}-{attempt}"),
            access_expires_at: NOW + 600,
        }
    }

    /// Many redemptions at once land in shared batches: each distinct code
    /// is redeemed once, a second attempt at a code loses, an expired code
    /// is never redeemed, and only the winners' refresh tokens are stored.
    #[tokio::test]
    async fn concurrent_redemptions_are_grouped_and_each_code_is_redeemed_once() {
        let (_dir, store, client, user) = store_with_code_owner().await;
        const CODES: usize = 40;
        for n in 0..CODES {
            let mut record = code(n, &client, &user);
            if n == 0 {
                record.expires_at = NOW;
            }
            store.insert_code(&record).await.unwrap();
        }
        let mut attempts = Vec::new();
        for attempt in 0..2 {
            for n in 0..CODES {
                let store = store.clone();
                let (client, user) = (client.clone(), user.clone());
                attempts.push(tokio::spawn(async move {
                    let token = refresh(n, attempt, &client, &user);
                    let issued = CodeRedemption {
                        access_jti: token.access_jti.clone(),
                        access_expires_at: token.access_expires_at,
                        family_id: Some(token.record.family_id.clone()),
                    };
                    let won = store
                        .redeem_code(&format!("code-{n}"), NOW + 1, &issued, Some(&token))
                        .await
                        .unwrap();
                    (n, attempt, won)
                }));
            }
        }
        let mut winners = vec![Vec::new(); CODES];
        for attempt in attempts {
            let (n, which, won) = attempt.await.unwrap();
            if won {
                winners[n].push(which);
            }
        }
        assert!(winners[0].is_empty(), "an expired code is never redeemed");
        for (n, won) in winners.iter().enumerate().skip(1) {
            assert_eq!(won.len(), 1, "code {n} is redeemed exactly once");
            let which = won[0];
            let stored = store
                .find_code(&format!("code-{n}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.used_at, Some(NOW + 1));
            let issued = stored.issued.unwrap();
            assert_eq!(issued.access_jti, format!("jti-{n}-{which}"));
            assert_eq!(issued.family_id, Some(format!("family-{n}-{which}")));
            let loser = 1 - which;
            assert!(
                store
                    .find_refresh(&format!("refresh-{n}-{which}"))
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                store
                    .find_refresh(&format!("refresh-{n}-{loser}"))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
}
