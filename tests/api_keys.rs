//! API keys (SPEC §3, §5, §8, §9): the `apikey` commands and what they print,
//! introspection of a key over HTTP and gRPC, what stops a key (on one server
//! and on a replica that remembers it), `last_used_at`, and the memory answer
//! that lets repeated checks of a key or an opaque token read no database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use oauthd::tokens::credential::{CredentialKind, mint};
use oauthd::tokens::secret::hash_secret;
use sea_orm::{ConnectionTrait as _, Statement};
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(1);
const NINETY_DAYS: i64 = 90 * 86_400;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A confidential client with the scopes `read write`, whose keys the tests
/// make.
fn key_owner(url: &str) -> TestClient {
    create_client(url, &["--scopes", "read write"])
}

/// `apikey create` for `client`, which must succeed.
fn create_key(url: &str, client: &TestClient, extra: &[&str]) -> Value {
    let mut args = vec!["apikey", "create", "--client", &client.id];
    args.extend_from_slice(extra);
    cli(url, &args)
}

fn text<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member]
        .as_str()
        .unwrap_or_else(|| panic!("{member} in {value}"))
}

fn members(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

/// Runs a command that must fail with one line on stderr; returns the line.
fn refused(url: &str, args: &[&str]) -> String {
    let output = cli_output(url, args, None);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(output.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

/// `POST /oauth/introspect` as `caller`; the JSON answer.
async fn introspect_http(server: &Server, caller: &TestClient, token: &str) -> Value {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/introspect"))
        .basic_auth(&caller.id, caller.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

const KEY_LOOKUPS: &str = "oauthd_store_lookups_total{kind=\"api_key\"}";
const TOKEN_LOOKUPS: &str = "oauthd_store_lookups_total{kind=\"access_token\"}";
const LAST_USED_WRITES: &str = "oauthd_api_key_last_used_writes_total";

/// The text columns of every stored key, as the database holds them.
async fn stored_key_columns(url: &str) -> Vec<Vec<String>> {
    let db = sea_orm::Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key_id, key_hash, client_id, name, scope, hint FROM api_keys",
        ))
        .await
        .unwrap();
    let columns = ["key_id", "key_hash", "client_id", "name", "scope", "hint"];
    let rows = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| row.try_get::<String>("", column).unwrap())
                .collect()
        })
        .collect();
    db.close().await.unwrap();
    rows
}

#[tokio::test]
async fn every_apikey_command_prints_its_fields_and_the_database_keeps_only_the_hash() {
    let db = TestDb::new();
    let client = key_owner(&db.url);
    let before = unix_now();
    let created = create_key(&db.url, &client, &["--name", "ci", "--scopes", "read"]);
    assert_eq!(
        members(&created),
        BTreeSet::from([
            "key_id",
            "api_key",
            "client_id",
            "name",
            "scopes",
            "created_at",
            "expires_at"
        ])
    );
    let key = text(&created, "api_key");
    let format = regex::Regex::new("^oak_[A-Za-z0-9]{43}[A-Za-z0-9]{6}$").unwrap();
    assert!(format.is_match(key), "SPEC §5 format: {key}");
    assert_eq!(created["client_id"], client.id.as_str());
    assert_eq!(created["name"], "ci");
    assert_eq!(created["scopes"], json!(["read"]));
    let created_at = created["created_at"].as_i64().unwrap();
    assert!((before..=unix_now()).contains(&created_at));
    assert_eq!(
        created["expires_at"].as_i64().unwrap(),
        created_at + NINETY_DAYS,
        "90 days unless --expires-in says otherwise"
    );

    let key_id = text(&created, "key_id");
    let shown = cli(&db.url, &["apikey", "show", key_id]);
    let mut expected = created.clone();
    let object = expected.as_object_mut().unwrap();
    object.remove("api_key");
    object.insert("last_used_at".into(), Value::Null);
    object.insert("revoked".into(), json!(false));
    object.insert("hint".into(), json!(&key[key.len() - 4..]));
    assert_eq!(shown, expected, "everything but the key");

    // Defaults: the client's name and all of its scopes.
    let plain = create_key(&db.url, &client, &[]);
    assert_eq!(plain["name"], "test");
    assert_eq!(plain["scopes"], json!(["read", "write"]));
    let other = key_owner(&db.url);
    let others = create_key(&db.url, &other, &[]);

    let listed = cli(&db.url, &["apikey", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.contains(&shown), "as show prints them");
    assert!(listed.iter().all(|key| key.get("api_key").is_none()));
    let of_other = cli(&db.url, &["apikey", "list", "--client", &other.id]);
    let of_other = of_other.as_array().unwrap();
    assert_eq!(of_other.len(), 1);
    assert_eq!(of_other[0]["key_id"], others["key_id"]);

    let revoked = cli(&db.url, &["apikey", "revoke", key_id]);
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["key_id"], key_id);
    let rotated = cli(&db.url, &["apikey", "rotate", text(&plain, "key_id")]);
    assert_eq!(
        members(&rotated),
        BTreeSet::from([
            "key_id",
            "api_key",
            "client_id",
            "name",
            "scopes",
            "created_at",
            "expires_at",
            "rotated_key_id",
            "rotated_key_expires_at"
        ])
    );
    assert_eq!(rotated["rotated_key_id"], plain["key_id"]);
    for same in ["client_id", "name", "scopes"] {
        assert_eq!(rotated[same], plain[same], "{same}");
    }
    assert_ne!(rotated["api_key"], plain["api_key"]);

    // Only hashes are stored: no column holds any key, and the hash is there.
    let values: Vec<&str> = [&created, &plain, &others, &rotated]
        .iter()
        .map(|value| text(value, "api_key"))
        .collect();
    let rows = stored_key_columns(&db.url).await;
    assert_eq!(rows.len(), 4);
    for value in &values {
        assert!(
            rows.iter().flatten().all(|column| !column.contains(value)),
            "a stored column holds the key"
        );
        assert!(rows.iter().any(|row| row[1] == hash_secret(value)));
    }
    if let Some(path) = &db.sqlite_path {
        // Nor does any byte of the database file and its log.
        for file in [path.clone(), path.with_extension("db-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let bytes = String::from_utf8_lossy(&bytes);
            for value in &values {
                assert!(!bytes.contains(value), "{} holds a key", file.display());
            }
        }
    }
}

#[tokio::test]
async fn wider_scopes_bad_lifetimes_and_unknown_names_are_refused() {
    let db = TestDb::new();
    let client = key_owner(&db.url);
    let id = client.id.as_str();
    let line = refused(
        &db.url,
        &["apikey", "create", "--client", id, "--scopes", "read admin"],
    );
    assert!(line.contains("admin"), "{line}");
    for lifetime in ["0", "-5", "31536001"] {
        refused(
            &db.url,
            &["apikey", "create", "--client", id, "--expires-in", lifetime],
        );
    }
    let year = create_key(&db.url, &client, &["--expires-in", "31536000"]);
    assert_eq!(
        year["expires_at"].as_i64().unwrap() - year["created_at"].as_i64().unwrap(),
        31_536_000
    );

    // A lowered maximum, as a flag and from the environment: it bounds
    // --expires-in and caps the default of 90 days.
    refused(
        &db.url,
        &[
            "apikey",
            "create",
            "--client",
            id,
            "--expires-in",
            "3601",
            "--api-key-max-ttl",
            "3600",
        ],
    );
    let capped = create_key(&db.url, &client, &["--api-key-max-ttl", "3600"]);
    assert_eq!(
        capped["expires_at"].as_i64().unwrap() - capped["created_at"].as_i64().unwrap(),
        3600
    );
    let from_env = std::process::Command::new(BIN)
        .args(["apikey", "create", "--client", id, "--expires-in", "61"])
        .args(["--database-url", &db.url])
        .env_remove("OAUTHD_CONFIG")
        .env("OAUTHD_API_KEY_MAX_TTL", "60")
        .output()
        .unwrap();
    assert!(!from_env.status.success());

    refused(&db.url, &["apikey", "create", "--client", "nope"]);
    refused(&db.url, &["apikey", "list", "--client", "nope"]);
    for command in ["show", "revoke", "rotate"] {
        refused(&db.url, &["apikey", command, "nope"]);
    }
    let key_id = text(&year, "key_id");
    refused(&db.url, &["apikey", "rotate", key_id, "--overlap", "-1"]);
    cli(&db.url, &["apikey", "revoke", key_id]);
    refused(&db.url, &["apikey", "rotate", key_id]);
    assert_eq!(
        cli(&db.url, &["apikey", "list"]).as_array().unwrap().len(),
        2,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn introspection_answers_for_a_key_with_the_members_of_spec_5_and_no_others() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = key_owner(&db.url);
    let resource_server = create_client(&db.url, &[]);
    let created = create_key(&db.url, &client, &["--scopes", "read"]);
    let key = text(&created, "api_key");

    let answer = introspect_http(&server, &resource_server, key).await;
    assert_eq!(
        answer,
        json!({
            "active": true,
            "client_id": client.id,
            "scope": "read",
            "sub": client.id,
            "iat": created["created_at"],
            "exp": created["expires_at"],
            "token_type": "api_key",
        })
    );

    let mut grpc = server.grpc().await;
    let answer = grpc
        .introspect(introspect_request(&resource_server, key))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    assert_eq!(answer.client_id.as_deref(), Some(client.id.as_str()));
    assert_eq!(answer.sub.as_deref(), Some(client.id.as_str()));
    assert_eq!(answer.scope.as_deref(), Some("read"));
    assert_eq!(answer.token_type.as_deref(), Some("api_key"));
    assert_eq!(answer.iat, created["created_at"].as_i64());
    assert_eq!(answer.exp, created["expires_at"].as_i64());
    assert_eq!(
        (
            answer.nbf,
            answer.iss,
            answer.aud,
            answer.jti,
            answer.username
        ),
        (None, None, None, None, None)
    );

    // A key of another deployment's format but nobody's: inactive, and so is
    // a key whose checksum fails.
    let unknown = mint(CredentialKind::ApiKey);
    assert_eq!(
        introspect_http(&server, &resource_server, &unknown).await,
        json!({"active": false})
    );
    let mut broken = key.to_owned();
    broken.replace_range(10..11, if &key[10..11] == "A" { "B" } else { "A" });
    assert!(!server.is_active(&resource_server, &broken).await);
}

#[tokio::test]
async fn revoke_stops_a_key_at_once_and_rotate_stops_the_old_one_after_its_overlap() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = key_owner(&db.url);
    let caller = create_client(&db.url, &[]);

    let revoked = create_key(&db.url, &client, &[]);
    assert!(server.is_active(&caller, text(&revoked, "api_key")).await);
    cli(&db.url, &["apikey", "revoke", text(&revoked, "key_id")]);
    assert!(
        !server.is_active(&caller, text(&revoked, "api_key")).await,
        "refused as soon as the command has returned"
    );

    let old = create_key(&db.url, &client, &[]);
    assert!(server.is_active(&caller, text(&old, "api_key")).await);
    let new = cli(&db.url, &["apikey", "rotate", text(&old, "key_id")]);
    let stops = new["rotated_key_expires_at"].as_i64().unwrap();
    assert!((unix_now() - 2..=unix_now()).contains(&stops));
    assert!(!server.is_active(&caller, text(&old, "api_key")).await);
    assert!(server.is_active(&caller, text(&new, "api_key")).await);

    let old = create_key(&db.url, &client, &[]);
    assert!(server.is_active(&caller, text(&old, "api_key")).await);
    let new = cli(
        &db.url,
        &["apikey", "rotate", text(&old, "key_id"), "--overlap", "30"],
    );
    let stops = new["rotated_key_expires_at"].as_i64().unwrap();
    assert!((unix_now() + 27..=unix_now() + 30).contains(&stops));
    let shown = cli(&db.url, &["apikey", "show", text(&old, "key_id")]);
    assert_eq!(shown["expires_at"].as_i64(), Some(stops));
    assert!(server.is_active(&caller, text(&old, "api_key")).await);
    assert!(server.is_active(&caller, text(&new, "api_key")).await);
    let answer = introspect_http(&server, &caller, text(&old, "api_key")).await;
    assert_eq!(
        answer["exp"].as_i64(),
        Some(stops),
        "it reports its new end"
    );
}

#[tokio::test]
async fn disabling_the_client_stops_its_keys_enabling_restores_them_and_deleting_ends_them() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = key_owner(&db.url);
    let caller = create_client(&db.url, &[]);
    let created = create_key(&db.url, &client, &[]);
    let key = text(&created, "api_key");
    assert!(server.is_active(&caller, key).await);

    cli(&db.url, &["client", "disable", &client.id]);
    assert!(!server.is_active(&caller, key).await);
    cli(&db.url, &["client", "enable", &client.id]);
    assert!(server.is_active(&caller, key).await);
    cli(&db.url, &["client", "delete", &client.id]);
    assert!(!server.is_active(&caller, key).await);
    assert_eq!(cli(&db.url, &["apikey", "list"]), json!([]));
    refused(&db.url, &["apikey", "show", text(&created, "key_id")]);
}

#[tokio::test]
async fn a_key_revoked_anywhere_is_refused_within_a_second_by_a_replica_that_remembers_it() {
    let db = TestDb::new();
    let a = Server::start(&db);
    let b = Server::start(&db);
    let client = key_owner(&db.url);
    let caller = create_client(&db.url, &[]);

    // Revoked over RFC 7009 at A by the client that owns it.
    let key = create_key(&db.url, &client, &[]);
    let key = text(&key, "api_key").to_owned();
    for _ in 0..3 {
        assert!(b.is_active(&caller, &key).await);
    }
    assert_eq!(metric(&b, KEY_LOOKUPS).await, 1.0, "B answers from memory");
    let response = reqwest::Client::new()
        .post(a.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revoked_at = Instant::now();
    assert!(
        !a.is_active(&caller, &key).await,
        "at once where it was revoked"
    );
    assert!(eventually(WITHIN, || async { !b.is_active(&caller, &key).await }).await);
    assert!(revoked_at.elapsed() < WITHIN, "{:?}", revoked_at.elapsed());

    // Revoked by the CLI, which returns once every server has reloaded.
    let created = create_key(&db.url, &client, &[]);
    let key = text(&created, "api_key");
    assert!(b.is_active(&caller, key).await);
    assert!(a.is_active(&caller, key).await);
    cli(&db.url, &["apikey", "revoke", text(&created, "key_id")]);
    assert!(!b.is_active(&caller, key).await);
    assert!(!a.is_active(&caller, key).await);
}

#[tokio::test]
async fn last_used_at_is_set_soon_after_a_use_and_not_rewritten_within_the_minute() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = key_owner(&db.url);
    let caller = create_client(&db.url, &[]);
    let created = create_key(&db.url, &client, &[]);
    let (key, key_id) = (text(&created, "api_key"), text(&created, "key_id"));
    let last_used = || cli(&db.url, &["apikey", "show", key_id])["last_used_at"].clone();
    assert_eq!(last_used(), Value::Null, "never used");

    let before = unix_now();
    assert!(server.is_active(&caller, key).await);
    let after = unix_now();
    assert!(
        eventually(Duration::from_secs(3), || async { !last_used().is_null() }).await,
        "written within seconds"
    );
    let first = last_used().as_i64().unwrap();
    assert!((before..=after).contains(&first), "{first}");
    assert_eq!(metric(&server, LAST_USED_WRITES).await, 1.0);

    // Used again, in a later second, within the minute: nothing written.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        assert!(server.is_active(&caller, key).await);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(last_used().as_i64(), Some(first));
    assert_eq!(metric(&server, LAST_USED_WRITES).await, 1.0);
}

#[tokio::test]
async fn repeated_introspections_of_a_key_or_an_opaque_token_read_no_database() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--token-format", "opaque"]);
    let client = key_owner(&db.url);
    let caller = create_client(&db.url, &[]);
    let key = create_key(&db.url, &client, &[]);
    let key = text(&key, "api_key");
    let token = server.client_credentials_token(&client).await.access_token;
    let unknown = mint(CredentialKind::ApiKey);
    let mut grpc = server.grpc().await;
    let credentials = [key, token.as_str(), unknown.as_str()];
    // The first checks look each credential up; after that the counts stay.
    for credential in credentials {
        assert_eq!(
            server.is_active(&caller, credential).await,
            credential != unknown
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let looked_up = (
        metric(&server, KEY_LOOKUPS).await,
        metric(&server, TOKEN_LOOKUPS).await,
    );
    assert_eq!(looked_up, (2.0, 1.0), "the key and the unknown; the token");
    for credential in credentials {
        let mut answers = BTreeSet::new();
        for _ in 0..1000 {
            let request = introspect_request(&caller, credential);
            answers.insert(grpc.introspect(request).await.unwrap().into_inner().active);
        }
        assert_eq!(
            answers,
            BTreeSet::from([credential != unknown]),
            "one answer throughout"
        );
    }
    assert_eq!(
        (
            metric(&server, KEY_LOOKUPS).await,
            metric(&server, TOKEN_LOOKUPS).await,
        ),
        looked_up,
        "3,000 introspections, no lookup"
    );
}
