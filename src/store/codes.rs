//! Authorization codes (SPEC §7): stored by hash, redeemed once.
//!
//! A redemption is one conditional update that only an unused, unexpired
//! code of the presenting client, bound to the presented redirect URI and
//! challenge, of a user who may still hold tokens, matches: of any number of
//! concurrent redemptions, on any number of replicas, exactly one sees its
//! row updated, and gets the code back from `RETURNING` to mint its tokens.
//! Nothing is read first. On PostgreSQL each redemption is one statement of
//! its own, which also stores the refresh token it issues. On SQLite, which
//! writes one statement at a time, redemptions waiting for the writer are
//! grouped (`write_queue.rs`) into one `UPDATE … FROM (VALUES …) RETURNING`,
//! whose trigger (migration `m20261203_000002`) stores each redeemed code's
//! refresh token.

use std::sync::LazyLock;

use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, Statement, Value,
};
use tokio::sync::oneshot;

use super::SeaStore;
use super::entities::authorization_code;
use super::retry::retrying;
use super::tokens::{insert_refresh_token, scope};
use super::write_queue::{WriteQueue, first_of_each};
use crate::oauth::model::{AuthorizationCodeRecord, CodeRedemption, CodeRedemptionRequest};
use crate::oauth::storage::{AuthorizationCodeStore, StoreError};

type Answer = Result<Option<AuthorizationCodeRecord>, StoreError>;

/// A redemption waiting for the writer.
pub(super) struct Pending {
    request: CodeRedemptionRequest,
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
            refresh_hash: Set(None),
            refresh_expires_at: Set(None),
        };
        retrying(|| async {
            let turn = self.write_turn().await;
            authorization_code::Entity::insert(row.clone())
                .exec_without_returning(turn.db())
                .await?;
            Ok(())
        })
        .await
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

    async fn redeem_code(&self, request: &CodeRedemptionRequest) -> Answer {
        let Some(queue) = self.redemptions() else {
            return self.redeem_alone(request).await;
        };
        let (reply, answer) = oneshot::channel();
        let start_drain = queue.push(Pending {
            request: request.clone(),
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

/// The conditions of a redemption, shared by both statements; `wanted` is the
/// presented row.
const REDEEMABLE: &str = "\
authorization_codes.code_hash = wanted.code_hash \
AND authorization_codes.used_at IS NULL AND authorization_codes.expires_at > wanted.now \
AND authorization_codes.client_id = wanted.client_id \
AND authorization_codes.redirect_uri IS NOT DISTINCT FROM wanted.redirect_uri \
AND authorization_codes.code_challenge IS NOT DISTINCT FROM wanted.code_challenge \
AND EXISTS (SELECT 1 FROM users WHERE users.id = authorization_codes.user_id \
AND users.locked = FALSE AND users.disabled = FALSE)";

const SET_REDEEMED: &str = "UPDATE authorization_codes SET used_at = wanted.now, \
access_jti = wanted.access_jti, access_expires_at = wanted.access_expires_at, \
family_id = wanted.family_id, refresh_hash = wanted.refresh_hash, \
refresh_expires_at = wanted.refresh_expires_at FROM (";

/// The presented row's column names, for PostgreSQL's `AS wanted (…)`.
const WANTED_COLUMNS: &str = "code_hash, now, access_jti, access_expires_at, family_id, \
client_id, redirect_uri, code_challenge, refresh_hash, refresh_expires_at";

/// Every column of the code, named by table: PostgreSQL's `RETURNING *`
/// would add the presented row's, and SQLite takes no `table.*` there.
const RETURNING: &str = " RETURNING authorization_codes.code_hash, \
authorization_codes.client_id, authorization_codes.user_id, authorization_codes.username, \
authorization_codes.redirect_uri, authorization_codes.scope, \
authorization_codes.code_challenge, authorization_codes.created_at, \
authorization_codes.expires_at, authorization_codes.used_at, authorization_codes.family_id, \
authorization_codes.access_jti, authorization_codes.access_expires_at, \
authorization_codes.refresh_hash, authorization_codes.refresh_expires_at";

fn wanted_values(request: &CodeRedemptionRequest) -> [Value; 10] {
    let successor = &request.successor;
    let refresh = request.family_id.is_some();
    [
        Value::from(request.code_hash.clone()),
        successor.issued_at.into(),
        successor.access_jti.clone().into(),
        successor.access_expires_at.into(),
        request.family_id.clone().into(),
        request.client_id.clone().into(),
        request.redirect_uri.clone().into(),
        request.code_challenge.clone().into(),
        refresh.then(|| successor.token_hash.clone()).into(),
        refresh.then_some(successor.expires_at).into(),
    ]
}

/// PostgreSQL's redemption, in one statement and one round trip, as a
/// refresh is (`exchange.rs`): the conditional `UPDATE` redeems the code, and
/// its `RETURNING` row feeds the `INSERT` of the refresh token it issues, as
/// SQLite's trigger does. Of concurrent redemptions of one code, on any
/// number of replicas, the first to lock the row wins; each other one
/// re-checks the row once the winner commits, finds it used, and matches
/// nothing.
static REDEEM_ALONE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH redeemed AS ({SET_REDEEMED}VALUES ($1, $2::BIGINT, $3, $4::BIGINT, $5, $6, $7, $8, \
$9, $10::BIGINT)) AS wanted ({WANTED_COLUMNS}) WHERE {REDEEMABLE}{RETURNING}), \
issued AS ({insert}SELECT refresh_hash, family_id, client_id, user_id, username, scope, scope, used_at, \
refresh_expires_at, NULL, FALSE, access_jti, access_expires_at, NULL \
FROM redeemed WHERE refresh_hash IS NOT NULL) \
SELECT * FROM redeemed",
        insert = insert_refresh_token!(),
    )
});

impl SeaStore {
    /// One redemption in one statement of its own (PostgreSQL).
    async fn redeem_alone(&self, request: &CodeRedemptionRequest) -> Answer {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            REDEEM_ALONE.as_str(),
            wanted_values(request),
        );
        retrying(|| async {
            let turn = self.write_turn().await;
            turn.db()
                .query_one_raw(statement.clone())
                .await?
                .map(|row| to_domain(authorization_code::Model::from_query_result(&row, "")?))
                .transpose()
        })
        .await
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
            // redemption; the repeat takes the checked path, which sees it used.
            let (batch, repeats) = first_of_each(batch, |pending| &pending.request.code_hash);
            for repeat in repeats {
                let _ = repeat.reply.send(Ok(None));
            }
            let result = self
                .retrying_batch(turn, |db| redeem_batch(db, &batch))
                .await;
            match result {
                Ok(mut redeemed) => {
                    for pending in batch {
                        let code = redeemed
                            .iter()
                            .position(|code| code.code_hash == pending.request.code_hash)
                            .map(|at| redeemed.swap_remove(at));
                        let _ = pending.reply.send(Ok(code));
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

/// Redeems every code of `batch` that still may be, in one statement whose
/// trigger stores their refresh tokens; returns the codes redeemed, as they
/// were.
async fn redeem_batch(
    db: &sea_orm::DatabaseConnection,
    batch: &[Pending],
) -> Result<Vec<AuthorizationCodeRecord>, StoreError> {
    let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
    // SQLite names a VALUES table's columns column1, column2, …, and takes no
    // column list after its alias: the select renames them.
    let renamed = WANTED_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(at, name)| format!("column{} AS {name}", at + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "{SET_REDEEMED}SELECT {renamed} FROM (VALUES {rows})) AS wanted WHERE {REDEEMABLE}{RETURNING}"
    );
    let values = batch
        .iter()
        .flat_map(|pending| wanted_values(&pending.request));
    let statement = Statement::from_sql_and_values(DbBackend::Sqlite, sql, values);
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| to_domain(authorization_code::Model::from_query_result(row, "")?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::oauth::model::{GrantType, PkceRule, RefreshSuccessor, UnixTime};
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

    fn redemption(n: usize, attempt: usize, client: &str) -> CodeRedemptionRequest {
        CodeRedemptionRequest {
            code_hash: format!("code-{n}"),
            client_id: client.into(),
            redirect_uri: None,
            code_challenge: None,
            successor: RefreshSuccessor {
                token_hash: format!("refresh-{n}-{attempt}"),
                issued_at: NOW + 1,
                expires_at: NOW + 3600,
                access_jti: format!("jti-{n}-{attempt}"),
                access_expires_at: NOW + 600,
            },
            family_id: Some(format!("family-{n}-{attempt}")),
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
        // A binding that does not hold redeems nothing.
        let mut other_client = redemption(1, 9, &client);
        other_client.client_id = "someone-else".into();
        assert!(store.redeem_code(&other_client).await.unwrap().is_none());
        let mut other_uri = redemption(1, 9, &client);
        other_uri.redirect_uri = Some("https://evil.example/cb".into());
        assert!(store.redeem_code(&other_uri).await.unwrap().is_none());
        let mut attempts = Vec::new();
        for attempt in 0..2 {
            for n in 0..CODES {
                let store = store.clone();
                let request = redemption(n, attempt, &client);
                attempts.push(tokio::spawn(async move {
                    let won = store.redeem_code(&request).await.unwrap().is_some();
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
