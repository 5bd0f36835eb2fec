//! Refresh exchanges in one statement each.
//!
//! On SQLite they are grouped (`write_queue.rs`): every exchange waiting for
//! the write turn goes into one statement, and each request is answered from
//! the statement's `RETURNING` rows. The statement inserts each successor
//! built from its used token's row, only while that row is live for the
//! presenting client, and the trigger of migration `m20261122_000001` marks
//! the used token in the same statement.
//!
//! On PostgreSQL, which has no such trigger, each exchange is one statement
//! of its own (`EXCHANGE_ALONE`): a conditional `UPDATE … RETURNING` marks
//! the used token and feeds the `INSERT` of its successor.
//!
//! Either way the user check reads the database, which is never behind the
//! cache the checked path consults.

use std::collections::HashMap;

use sea_orm::{DbBackend, EntityTrait, Statement, Value};
use tokio::sync::oneshot;

use super::SeaStore;
use super::entities::refresh_token;
use super::retry::retrying;
use super::tokens::{insert_refresh_token, refresh_to_domain};
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
    /// Queues one exchange and waits for the statement that carries it; on
    /// PostgreSQL, runs it alone.
    pub(super) async fn exchange_grouped(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> Answer {
        let Some(queue) = self.exchanges() else {
            return self.exchange_alone(used_hash, client_id, successor).await;
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

    /// One exchange in one statement (PostgreSQL): one round trip.
    async fn exchange_alone(
        &self,
        used_hash: &str,
        client_id: &str,
        successor: &RefreshSuccessor,
    ) -> Answer {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            EXCHANGE_ALONE,
            exchange_values(used_hash, client_id, successor),
        );
        retrying(|| async {
            let turn = self.write_turn().await;
            refresh_token::Entity::find()
                .from_raw_sql(statement.clone())
                .one(turn.db())
                .await?
                .map(refresh_to_domain)
                .transpose()
        })
        .await
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
            let statement = exchange_statement(&batch);
            let result = self
                .retrying_batch(turn, |db| async {
                    Ok(refresh_token::Entity::find()
                        .from_raw_sql(statement.clone())
                        .all(db)
                        .await?)
                })
                .await;
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

const EXCHANGE_HEAD: &str = concat!(
    insert_refresh_token!(),
    "SELECT wanted.column1, used.family_id, used.client_id, used.user_id, used.username, \
used.grant_scope, used.grant_scope, wanted.column2, wanted.column3, NULL, FALSE, \
wanted.column4, wanted.column5, used.token_hash \
FROM (VALUES "
);

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

/// PostgreSQL's exchange: the same conditions as the grouped statement, in one
/// statement rather than a transaction of four (`BEGIN`, `UPDATE`, `INSERT`,
/// `COMMIT`), so a refresh is one round trip. The `UPDATE` marks the used token
/// only while it is live for the presenting client, and its `RETURNING` row is
/// what the `INSERT` builds the successor from: no live token, no successor,
/// no row back. Single use holds across replicas through the row lock: of
/// concurrent exchanges of one token, the first to lock it wins, and each
/// other one re-checks the row once the winner commits, finds it used, and
/// matches nothing.
const EXCHANGE_ALONE: &str = concat!(
    "WITH used AS (UPDATE refresh_tokens SET used_at = $2::BIGINT \
WHERE token_hash = $6 AND client_id = $7 \
AND used_at IS NULL AND revoked = FALSE AND expires_at > $2::BIGINT \
AND (user_id IS NULL OR EXISTS (SELECT 1 FROM users \
WHERE users.id = refresh_tokens.user_id AND users.locked = FALSE AND users.disabled = FALSE)) \
RETURNING token_hash, family_id, client_id, user_id, username, grant_scope) ",
    insert_refresh_token!(),
    "SELECT $1, used.family_id, used.client_id, used.user_id, used.username, \
used.grant_scope, used.grant_scope, $2::BIGINT, $3::BIGINT, NULL, FALSE, \
$4, $5::BIGINT, used.token_hash \
FROM used \
RETURNING *"
);

/// One exchange's values, in the order of both statements' placeholders.
fn exchange_values(used_hash: &str, client_id: &str, successor: &RefreshSuccessor) -> [Value; 7] {
    [
        Value::from(successor.token_hash.clone()),
        successor.issued_at.into(),
        successor.expires_at.into(),
        successor.access_jti.clone().into(),
        successor.access_expires_at.into(),
        used_hash.to_owned().into(),
        client_id.to_owned().into(),
    ]
}

fn exchange_statement(batch: &[Pending]) -> Statement {
    let rows = vec![EXCHANGE_ROW; batch.len()].join(", ");
    let sql = format!("{EXCHANGE_HEAD}{rows}{EXCHANGE_TAIL}");
    let values = batch.iter().flat_map(|pending| {
        exchange_values(&pending.used_hash, &pending.client_id, &pending.successor)
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

    /// A PostgreSQL database of its own, on the server `OAUTHD_TEST_DATABASE_URL`
    /// names (else the local one), dropped with this guard. Fails, never skips,
    /// when no server answers, as the integration tests' harness does.
    struct PostgresDb {
        server: String,
        name: String,
    }

    impl PostgresDb {
        async fn create() -> (Self, SeaStore) {
            use sea_orm::ConnectionTrait as _;
            let server = std::env::var("OAUTHD_TEST_DATABASE_URL")
                .ok()
                .filter(|url| url.starts_with("postgres"))
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let name = format!("oauthd_unit_{}", new_id());
            let admin = sea_orm::Database::connect(&server)
                .await
                .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {server}: {err}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            admin.close().await.unwrap();
            let base = server
                .rsplit_once('/')
                .map_or(server.as_str(), |(base, _)| base);
            let store = SeaStore::open(&format!("{base}/{name}"), 8, None)
                .await
                .unwrap();
            (Self { server, name }, store)
        }
    }

    impl Drop for PostgresDb {
        // On a runtime of its own: the test's may be gone, or single-threaded.
        fn drop(&mut self) {
            use sea_orm::ConnectionTrait as _;
            let (server, name) = (self.server.clone(), self.name.clone());
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let admin = sea_orm::Database::connect(&server).await.unwrap();
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    admin.execute_unprepared(&drop).await.unwrap();
                    admin.close().await.unwrap();
                });
            })
            .join();
        }
    }

    #[tokio::test]
    async fn on_postgresql_one_statement_exchanges_only_a_live_token() {
        let (_db, store) = PostgresDb::create().await;
        let app = client(&store).await;
        let other_app = client(&store).await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;

        let live = stored(&store, &app, Some(&alice), NOW + 100).await;
        let next = successor();
        let exchanged = store
            .exchange_refresh(&live, &app, &next)
            .await
            .unwrap()
            .unwrap();
        let parent = store.find_refresh(&live).await.unwrap().unwrap();
        assert_eq!(exchanged.token_hash, next.token_hash);
        assert_eq!(exchanged.family_id, parent.family_id);
        assert_eq!(exchanged.client_id, app);
        assert_eq!(exchanged.user_id.as_deref(), Some(alice.id.as_str()));
        assert_eq!(exchanged.username.as_deref(), Some("alice"));
        assert_eq!(exchanged.scope, parent.grant_scope);
        assert_eq!(exchanged.grant_scope, parent.grant_scope);
        assert_eq!(exchanged.issued_at, NOW);
        assert_eq!(exchanged.expires_at, NOW + 3600);
        assert_eq!((exchanged.used_at, exchanged.revoked), (None, false));
        assert_eq!(parent.used_at, Some(NOW));
        assert_eq!(
            store.find_refresh(&next.token_hash).await.unwrap(),
            Some(exchanged)
        );
        // Used now: presented again, it is refused and spends nothing.
        let again = successor();
        assert!(
            store
                .exchange_refresh(&live, &app, &again)
                .await
                .unwrap()
                .is_none()
        );

        let ownerless = stored(&store, &app, None, NOW + 100).await;
        let exchanged = store
            .exchange_refresh(&ownerless, &app, &successor())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exchanged.user_id, None);

        let expired = stored(&store, &app, Some(&alice), NOW).await;
        let of_other_app = stored(&store, &other_app, Some(&alice), NOW + 100).await;
        let of_locked_user = stored(&store, &app, Some(&bob), NOW + 100).await;
        store.change_user("bob", UserChange::Lock).await.unwrap();
        let revoked = stored(&store, &app, Some(&alice), NOW + 100).await;
        let family = store
            .find_refresh(&revoked)
            .await
            .unwrap()
            .unwrap()
            .family_id;
        store.revoke_family(&family, NOW).await.unwrap();
        for refused in [
            &expired,
            &of_other_app,
            &of_locked_user,
            &revoked,
            &again.token_hash,
        ] {
            let attempt = successor();
            assert!(
                store
                    .exchange_refresh(refused, &app, &attempt)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                store
                    .find_refresh(&attempt.token_hash)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        // What was refused stays as it was.
        for untouched in [&expired, &of_other_app, &of_locked_user] {
            let record = store.find_refresh(untouched).await.unwrap().unwrap();
            assert_eq!(record.used_at, None);
        }
    }

    // Separate connections on a runtime of several threads: the exchanges
    // really meet at the row lock, as exchanges from several replicas do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgresql_concurrent_exchanges_of_one_token_have_one_winner() {
        let (_db, store) = PostgresDb::create().await;
        let app = client(&store).await;
        let alice = user(&store, "alice").await;
        for round in 0..5 {
            let token = stored(&store, &app, Some(&alice), NOW + 100).await;
            let successors: Vec<RefreshSuccessor> = (0..8).map(|_| successor()).collect();
            let racers: Vec<_> = successors
                .iter()
                .map(|next| {
                    let (store, token, app, next) =
                        (store.clone(), token.clone(), app.clone(), next.clone());
                    tokio::spawn(async move { store.exchange_refresh(&token, &app, &next).await })
                })
                .collect();
            let mut winners = Vec::new();
            for (at, racer) in racers.into_iter().enumerate() {
                if racer.await.unwrap().unwrap().is_some() {
                    winners.push(at);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: exactly one exchange wins");
            for (at, next) in successors.iter().enumerate() {
                let row = store.find_refresh(&next.token_hash).await.unwrap();
                assert_eq!(
                    row.is_some(),
                    at == winners[0],
                    "round {round}: successor {at}"
                );
            }
        }
    }
}
