//! The memory answer for API keys over a real SQLite file, with two stores on
//! it standing for two servers; and the management operations.

#![allow(clippy::unwrap_used)]

use sea_orm::ConnectionTrait as _;

use super::*;
use crate::oauth::api_keys::{ApiKeyRequest, NewApiKey, new_api_key, rotate_api_key};
use crate::oauth::model::{GrantType, PkceRule};
use crate::oauth::scope::ScopeSet;
use crate::store::changes::read_versions;
use crate::store::{ClientSpec, ClientView};

const NOW: UnixTime = 1_800_000_000;
const MAX_TTL: i64 = 365 * 86_400;

async fn two_servers() -> (tempfile::TempDir, SeaStore, SeaStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let here = SeaStore::open(&url, 2, None).await.unwrap();
    let there = SeaStore::open(&url, 2, None).await.unwrap();
    here.sync_now().await.unwrap();
    there.sync_now().await.unwrap();
    (dir, here, there)
}

async fn client(store: &SeaStore) -> ClientView {
    let spec = ClientSpec {
        name: "svc".into(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("read write").unwrap(),
        access_token_ttl: None,
        public: false,
        redirect_uris: Vec::new(),
        skip_consent: false,
        pkce: PkceRule::Required,
    };
    store.create_client(spec, NOW).await.unwrap()
}

async fn key(store: &SeaStore, client: &ClientView) -> NewApiKey {
    let key = new_api_key(&client.client, ApiKeyRequest::default(), MAX_TTL, NOW).unwrap();
    store.create_api_key(&key.record).await.unwrap();
    key
}

async fn execute(store: &SeaStore, sql: &str) {
    store.db().execute_unprepared(sql).await.unwrap();
}

#[tokio::test]
async fn a_key_is_looked_up_once_and_then_answered_from_memory() {
    let (_dir, here, _) = two_servers().await;
    let client = client(&here).await;
    let key = key(&here, &client).await;
    let found = here.find_api_key(&key.record.key_hash).await.unwrap();
    assert_eq!(found.as_ref(), Some(&key.record));
    // Gone from the database behind oauthd's back, and no counter moved:
    // memory still answers, which shows that it is memory answering.
    execute(&here, "DELETE FROM api_keys").await;
    let again = here.find_api_key(&key.record.key_hash).await.unwrap();
    assert_eq!(again.as_ref(), Some(&key.record));
}

#[tokio::test]
async fn a_revocation_at_one_server_is_seen_at_once_there_and_at_the_others_next_sync() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let key = key(&here, &client).await;
    let hash = &key.record.key_hash;
    there.sync_now().await.unwrap();
    assert!(!there.find_api_key(hash).await.unwrap().unwrap().revoked);
    assert!(!here.find_api_key(hash).await.unwrap().unwrap().revoked);

    assert!(here.revoke_api_key(&key.record.key_id).await.unwrap());
    assert!(!here.revoke_api_key(&key.record.key_id).await.unwrap());
    assert!(here.find_api_key(hash).await.unwrap().unwrap().revoked);
    assert!(
        !there.find_api_key(hash).await.unwrap().unwrap().revoked,
        "remembered until the next sync"
    );
    there.sync_now().await.unwrap();
    assert!(there.find_api_key(hash).await.unwrap().unwrap().revoked);
}

#[tokio::test]
async fn an_unknown_value_is_remembered_as_unknown_until_the_counter_moves() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let stored = new_api_key(&client.client, ApiKeyRequest::default(), MAX_TTL, NOW).unwrap();
    assert_eq!(
        there.find_api_key(&stored.record.key_hash).await.unwrap(),
        None
    );
    // Stored behind oauthd's back: remembered as unknown still.
    let row = new_row(&stored.record);
    api_key::Entity::insert(row).exec(here.db()).await.unwrap();
    assert_eq!(
        there.find_api_key(&stored.record.key_hash).await.unwrap(),
        None
    );
    // Any announced change of a key makes every server forget.
    let other = key(&here, &client).await;
    assert!(here.revoke_api_key(&other.record.key_id).await.unwrap());
    there.sync_now().await.unwrap();
    assert_eq!(
        there.find_api_key(&stored.record.key_hash).await.unwrap(),
        Some(stored.record)
    );
}

#[tokio::test]
async fn creating_a_key_moves_no_counter_and_the_key_works_at_once() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let before = read_versions(here.db()).await.unwrap();
    let key = key(&here, &client).await;
    assert_eq!(read_versions(here.db()).await.unwrap(), before);
    assert_eq!(
        there.find_api_key(&key.record.key_hash).await.unwrap(),
        Some(key.record)
    );
}

#[tokio::test]
async fn a_rotation_shortens_the_old_key_and_stores_the_new_one_together() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let old = key(&here, &client).await.record;
    assert!(there.find_api_key(&old.key_hash).await.unwrap().is_some());
    let (new, stops) = rotate_api_key(&old, 30, MAX_TTL, NOW + 10);
    assert!(
        here.replace_api_key(&old, &new.record, stops)
            .await
            .unwrap()
    );
    assert_eq!(stops, NOW + 40);

    let shown = here.show_api_key(&old.key_id).await.unwrap().unwrap();
    assert_eq!(shown.record.expires_at, NOW + 40);
    let listed = here.list_api_keys(Some(&client.client.id)).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|view| &view.record.key_id).collect();
    assert_eq!(ids, [&old.key_id, &new.record.key_id]);

    // What was read before is stale now: a second rotation from it writes
    // nothing, and neither does one of a revoked key.
    let (other, stops) = rotate_api_key(&old, 0, MAX_TTL, NOW + 20);
    assert!(
        !here
            .replace_api_key(&old, &other.record, stops)
            .await
            .unwrap()
    );
    assert_eq!(here.list_api_keys(None).await.unwrap().len(), 2);

    there.sync_now().await.unwrap();
    let seen = there.find_api_key(&old.key_hash).await.unwrap().unwrap();
    assert_eq!(seen.expires_at, NOW + 40);
}

#[tokio::test]
async fn deleting_the_client_deletes_its_keys_and_announces_it() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let key = key(&here, &client).await.record;
    assert!(there.find_api_key(&key.key_hash).await.unwrap().is_some());
    let before = read_versions(here.db()).await.unwrap();
    assert!(here.delete_client(&client.client.id).await.unwrap());
    let after = read_versions(here.db()).await.unwrap();
    for kind in [ChangeKind::Clients, ChangeKind::ApiKeys] {
        assert_eq!(after.get(kind), before.get(kind) + 1, "{kind:?}");
    }
    assert!(here.list_api_keys(None).await.unwrap().is_empty());
    there.sync_now().await.unwrap();
    assert_eq!(there.find_api_key(&key.key_hash).await.unwrap(), None);
}

#[tokio::test]
async fn uses_are_written_once_a_minute_and_never_move_last_used_at_back() {
    let (_dir, here, there) = two_servers().await;
    let client = client(&here).await;
    let key = key(&here, &client).await.record;
    let last_used = |store: &SeaStore| {
        let store = store.clone();
        let key_id = key.key_id.clone();
        async move {
            let view = store.show_api_key(&key_id).await.unwrap().unwrap();
            view.last_used_at
        }
    };
    assert_eq!(last_used(&here).await, None);

    here.api_key_used(&key.key_id, NOW + 100);
    here.api_key_used(&key.key_id, NOW + 101);
    here.write_key_uses().await;
    assert_eq!(last_used(&here).await, Some(NOW + 101));
    here.api_key_used(&key.key_id, NOW + 150);
    here.write_key_uses().await;
    assert_eq!(last_used(&here).await, Some(NOW + 101), "within the minute");
    here.api_key_used(&key.key_id, NOW + 161);
    here.write_key_uses().await;
    assert_eq!(last_used(&here).await, Some(NOW + 161));

    // Another server that saw an older use writes it after: no step back.
    there.api_key_used(&key.key_id, NOW + 120);
    there.write_key_uses().await;
    assert_eq!(last_used(&there).await, Some(NOW + 161));
}
