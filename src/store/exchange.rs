//! Refresh exchanges on SQLite, grouped (`write_queue.rs`): every exchange
//! waiting for the write turn goes into one statement, and each request is
//! answered from the statement's `RETURNING` rows.
//!
//! The statement inserts each successor built from its used token's row, only
//! while that row is live for the presenting client, and the trigger of
//! migration `m20261122_000001` marks the used token in the same statement.
//! The user check reads the database, which is never behind the cache the
//! checked path consults.

use std::collections::HashMap;

use sea_orm::{DbBackend, EntityTrait, Statement, Value};
use tokio::sync::oneshot;

use super::SeaStore;
use super::entities::refresh_token;
use super::tokens::refresh_to_domain;
use super::write_queue::{WriteQueue, first_of_each};
use crate::oauth::model::{RefreshRecord, RefreshSuccessor};
use crate::oauth::storage::StoreError;

type Answer = Result<Option<RefreshRecord>, StoreError>;

pub(super) struct Pending {
    used_hash: String,
    client_id: String,
    successor: RefreshSuccessor,
    reply: oneshot::Sender<Answer>,
}

/// Refresh exchanges waiting for a statement.
pub(super) type ExchangeQueue = WriteQueue<Pending>;

impl SeaStore {
    /// Queues one exchange and waits for the statement that carries it.
    /// `Ok(None)` at once on PostgreSQL: with no trigger to mark the used token,
    /// it takes the checked path, whose row lock keeps replicas exact.
    pub(super) async fn exchange_grouped(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> Answer {
        let Some(queue) = self.exchanges() else {
            return Ok(None);
        };
        let (reply, answer) = oneshot::channel();
        let start_drain = queue.push(Pending {
            used_hash: used_hash.to_owned(),
            client_id: client_id.to_owned(),
            successor: successor.clone(),
            reply,
        });
        if start_drain {
            // A task of its own: a request that gives up (its deadline passed)
            // must not take the others' statement down with it.
            tokio::spawn(self.clone().drain_exchanges());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Other("refresh exchange was dropped".into())))
    }

    async fn drain_exchanges(self) {
        let Some(queue) = self.exchanges() else {
            return;
        };
        loop {
            let turn = self.write_turn().await;
            let Some(batch) = queue.next_batch() else {
                return;
            };
            let (batch, repeats) = first_of_each(batch, |pending| &pending.used_hash);
            // A token presented twice at once is spent by its first exchange;
            // the repeat takes the checked path, which sees it used.
            for repeat in repeats {
                let _ = repeat.reply.send(Ok(None));
            }
            let result = refresh_token::Entity::find()
                .from_raw_sql(exchange_statement(&batch))
                .all(turn.db())
                .await
                .map_err(StoreError::from);
            drop(turn);
            answer(batch, result);
        }
    }
}

fn answer(batch: Vec<Pending>, result: Result<Vec<refresh_token::Model>, StoreError>) {
    match result {
        Ok(rows) => {
            let mut by_used: HashMap<String, refresh_token::Model> = rows
                .into_iter()
                .filter_map(|row| Some((row.parent_hash.clone()?, row)))
                .collect();
            for pending in batch {
                let record = by_used
                    .remove(&pending.used_hash)
                    .map(refresh_to_domain)
                    .transpose();
                let _ = pending.reply.send(record);
            }
        }
        Err(error) => {
            for pending in batch {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}

const EXCHANGE_HEAD: &str = "\
INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, username, scope, \
grant_scope, issued_at, expires_at, used_at, revoked, access_jti, access_expires_at, parent_hash) \
SELECT wanted.column1, used.family_id, used.client_id, used.user_id, used.username, \
used.grant_scope, used.grant_scope, wanted.column2, wanted.column3, NULL, FALSE, \
wanted.column4, wanted.column5, used.token_hash \
FROM (VALUES ";

const EXCHANGE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?)";

// CROSS JOIN keeps the wanted rows outermost, so each used token is one
// primary-key lookup rather than a scan.
const EXCHANGE_TAIL: &str = ") AS wanted \
CROSS JOIN refresh_tokens AS used \
WHERE used.token_hash = wanted.column6 AND used.client_id = wanted.column7 \
AND used.used_at IS NULL AND used.revoked = FALSE AND used.expires_at > wanted.column2 \
AND (used.user_id IS NULL OR EXISTS (SELECT 1 FROM users \
WHERE users.id = used.user_id AND users.locked = FALSE AND users.disabled = FALSE)) \
RETURNING *";

fn exchange_statement(batch: &[Pending]) -> Statement {
    let rows = vec![EXCHANGE_ROW; batch.len()].join(", ");
    let sql = format!("{EXCHANGE_HEAD}{rows}{EXCHANGE_TAIL}");
    let values = batch.iter().flat_map(|pending| {
        let successor = &pending.successor;
        [
            Value::from(successor.token_hash.clone()),
            successor.issued_at.into(),
            successor.expires_at.into(),
            successor.access_jti.clone().into(),
            successor.access_expires_at.into(),
            pending.used_hash.clone().into(),
            pending.client_id.clone().into(),
        ]
    });
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::oauth::model::{GrantType, NewRefreshToken, PkceRule, UnixTime, User};
    use crate::oauth::scope::ScopeSet;
    use crate::oauth::storage::RefreshTokenStore as _;
    use crate::store::{ClientSpec, UserChange, UserSpec};
    use crate::tokens::secret::new_id;

    const NOW: UnixTime = 1_800_000_000;

    async fn sqlite_store(dir: &tempfile::TempDir) -> SeaStore {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        SeaStore::open(&url, 4, None).await.unwrap()
    }

    async fn client(store: &SeaStore) -> String {
        let spec = ClientSpec {
            name: "app".into(),
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: ScopeSet::parse("read write").unwrap(),
            access_token_ttl: None,
            public: false,
            redirect_uris: Vec::new(),
            skip_consent: false,
            pkce: PkceRule::Required,
        };
        store.create_client(spec, NOW).await.unwrap().client.id
    }

    async fn user(store: &SeaStore, name: &str) -> User {
        let spec = UserSpec {
            username: name.into(),
            email: None,
            phone: None,
            password_hash: "unused".into(),
        };
        store.create_user(spec, NOW).await.unwrap()
    }

    /// Stores a live token of its own family and returns its hash.
    async fn stored(
        store: &SeaStore,
        client_id: &str,
        owner: Option<&User>,
        expires_at: i64,
    ) -> String {
        let hash = new_id();
        let record = RefreshRecord {
            token_hash: hash.clone(),
            family_id: new_id(),
            client_id: client_id.into(),
            user_id: owner.map(|user| user.id.clone()),
            username: owner.map(|user| user.username.clone()),
            scope: ScopeSet::parse("read").unwrap(),
            grant_scope: ScopeSet::parse("read write").unwrap(),
            issued_at: NOW - 10,
            expires_at,
            used_at: None,
            revoked: false,
        };
        let token = NewRefreshToken {
            record,
            access_jti: new_id(),
            access_expires_at: NOW,
        };
        store.insert_refresh(&token).await.unwrap();
        hash
    }

    fn successor() -> RefreshSuccessor {
        RefreshSuccessor {
            token_hash: new_id(),
            issued_at: NOW,
            expires_at: NOW + 3600,
            access_jti: new_id(),
            access_expires_at: NOW + 60,
        }
    }

    // On a single-threaded runtime every exchange below queues before the drain
    // task first runs, so they all travel in one statement: each must still get
    // its own answer.
    #[tokio::test]
    async fn one_statement_answers_every_queued_exchange_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let app = client(&store).await;
        let other_app = client(&store).await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;

        let live = stored(&store, &app, Some(&alice), NOW + 100).await;
        let ownerless = stored(&store, &app, None, NOW + 100).await;
        let twice = stored(&store, &app, Some(&alice), NOW + 100).await;
        let expired = stored(&store, &app, Some(&alice), NOW).await;
        let of_other_app = stored(&store, &other_app, Some(&alice), NOW + 100).await;
        let of_locked_user = stored(&store, &app, Some(&bob), NOW + 100).await;
        store.change_user("bob", UserChange::Lock).await.unwrap();
        let used = stored(&store, &app, Some(&alice), NOW + 100).await;
        assert!(
            store
                .exchange_refresh(&used, &app, &successor())
                .await
                .unwrap()
                .is_some()
        );

        let asks = [
            (&live, &app),
            (&ownerless, &app),
            (&twice, &app),
            (&twice, &app),
            (&expired, &app),
            (&of_other_app, &app),
            (&of_locked_user, &app),
            (&used, &app),
            (&"unknown".to_owned(), &app),
        ];
        let successors: Vec<RefreshSuccessor> = asks.iter().map(|_| successor()).collect();
        // Spawned tasks run in order once the test first waits, each queueing its
        // exchange before the drain task they start gets its turn.
        let tasks: Vec<_> = asks
            .iter()
            .zip(&successors)
            .map(|((hash, client_id), next)| {
                let (store, hash, client_id, next) = (
                    store.clone(),
                    hash.to_string(),
                    client_id.to_string(),
                    next.clone(),
                );
                tokio::spawn(async move { store.exchange_refresh(&hash, &client_id, &next).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap().unwrap());
        }

        let exchanged = answers[0].as_ref().unwrap();
        let parent = store.find_refresh(&live).await.unwrap().unwrap();
        assert_eq!(exchanged.token_hash, successors[0].token_hash);
        assert_eq!(exchanged.family_id, parent.family_id);
        assert_eq!(exchanged.user_id.as_deref(), Some(alice.id.as_str()));
        assert_eq!(exchanged.username.as_deref(), Some("alice"));
        assert_eq!(exchanged.scope, parent.grant_scope);
        assert_eq!(exchanged.expires_at, NOW + 3600);
        assert_eq!(parent.used_at, Some(NOW));
        assert_eq!(answers[1].as_ref().unwrap().user_id, None);
        // A token presented twice at once is exchanged once.
        assert!(answers[2].is_some());
        assert!(answers[3].is_none());
        let second_successor = store.find_refresh(&successors[3].token_hash).await.unwrap();
        assert!(second_successor.is_none());
        for refused in &answers[4..] {
            assert!(refused.is_none());
        }
        // What was refused stays as it was.
        let untouched = store.find_refresh(&of_locked_user).await.unwrap().unwrap();
        assert_eq!(untouched.used_at, None);
        let successor_row = store.find_refresh(&successors[0].token_hash).await.unwrap();
        assert!(successor_row.is_some());
        assert!(
            store
                .find_refresh(&successors[5].token_hash)
                .await
                .unwrap()
                .is_none()
        );
    }
}
