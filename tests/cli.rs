//! The management CLI (SPEC §3): JSON on stdout, one line on stderr and a
//! non-zero exit on failure, fresh databases, and a running server seeing changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn client_create_defaults_to_client_credentials_and_a_urlsafe_secret() {
    let db = TestDb::new();
    let created = cli(&db.url, &["client", "create", "--name", "billing"]);
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(created["scopes"], serde_json::json!([]));
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "at least 256 bits");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );

    let id = created["client_id"].as_str().unwrap();
    let shown = cli(&db.url, &["client", "show", id]);
    assert_eq!(shown["name"], "billing");
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is shown once only"
    );
    let listed = cli(&db.url, &["client", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn global_settings_go_before_or_after_the_subcommand() {
    let db = TestDb::new();
    let output = std::process::Command::new(BIN)
        .args(["--database-url", &db.url, "client", "list"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap(),
        serde_json::json!([])
    );
    assert_eq!(cli(&db.url, &["migrate"])["migrated"], true);
}

#[test]
fn failures_exit_non_zero_with_one_line_on_stderr() {
    let db = TestDb::new();
    for args in [
        &["client", "show", "nope"][..],
        &["client", "disable", "nope"],
        &["user", "lock", "nobody"],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-types",
            "implicit",
        ],
        &["client", "create", "--name", "x", "--public"],
    ] {
        let output = cli_output(&db.url, args, None);
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    create_user(
        &db.url,
        "taken",
        "pw-123456",
        &["--email", "taken@example.com"],
    );
    let duplicate = cli_output(
        &db.url,
        &[
            "user",
            "create",
            "--username",
            "taken@example.com",
            "--password-stdin",
        ],
        Some("pw\n"),
    );
    assert!(
        !duplicate.status.success(),
        "a login already used as an email is refused"
    );
}

#[tokio::test]
async fn password_stdin_drops_exactly_one_trailing_newline() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    cli_with_stdin(
        &db.url,
        &["user", "create", "--username", "nina", "--password-stdin"],
        Some("two words\n"),
    );
    let mut grpc = server.grpc().await;
    grpc.issue_token(password_request(&client, "nina", "two words"))
        .await
        .unwrap();
    grpc.issue_token(password_request(&client, "nina", "two words\n"))
        .await
        .unwrap_err();

    cli_with_stdin(
        &db.url,
        &["user", "set-password", "nina", "--password-stdin"],
        Some("new one\n\n"),
    );
    grpc.issue_token(password_request(&client, "nina", "new one\n"))
        .await
        .unwrap();
}

#[tokio::test]
async fn rotate_secret_replaces_the_secret_on_a_running_server() {
    let db = TestDb::new();
    let server = Server::start(&db);
    let client = create_full_client(&db.url);
    let mut grpc = server.grpc().await;
    grpc.issue_token(client_credentials_request(&client))
        .await
        .unwrap();

    let rotated = cli(&db.url, &["client", "rotate-secret", &client.id]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(Some(new_secret.clone()), client.secret);
    let fresh = TestClient {
        id: client.id.clone(),
        secret: Some(new_secret),
    };
    grpc.issue_token(client_credentials_request(&fresh))
        .await
        .unwrap();
    // When the command has returned, the old secret no longer works.
    let refused = grpc
        .issue_token(client_credentials_request(&client))
        .await
        .unwrap_err();
    assert_eq!(oauth_error(&refused).1, "invalid_client");
}

#[tokio::test]
async fn keys_list_and_rotate() {
    let db = TestDb::new();
    let server = Server::start_with(&db, &["--key-publish-delay", "1"]);
    let keys = cli(&db.url, &["keys", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "active");
    assert!(keys[0].get("private_key").is_none());

    let rotated = cli(&db.url, &["keys", "rotate"]);
    assert_eq!(rotated["state"], "published");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let old_kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let jwks_has_both = eventually(Duration::from_secs(1), || async {
        let jwks: serde_json::Value = reqwest::get(server.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        kids.contains(&new_kid.as_str()) && kids.contains(&old_kid.as_str())
    })
    .await;
    assert!(jwks_has_both);
    let listed = cli(&db.url, &["keys", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
}

#[test]
fn the_database_holds_no_secret_password_or_token_in_the_clear() {
    let db = TestDb::sqlite();
    let client = create_full_client(&db.url);
    create_user(&db.url, "olga", "Correct-Horse-Battery-Staple", &[]);
    let refresh_token = {
        let server = Server::start(&db);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut grpc = server.grpc().await;
            let token = grpc
                .issue_token(password_request(
                    &client,
                    "olga",
                    "Correct-Horse-Battery-Staple",
                ))
                .await
                .unwrap()
                .into_inner();
            token.refresh_token.unwrap()
        })
    };
    let path = db.sqlite_path.as_ref().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    for sidecar in ["-wal", "-shm"] {
        if let Ok(more) = std::fs::read(format!("{}{sidecar}", path.display())) {
            bytes.extend(more);
        }
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(haystack.contains("olga"), "the test reads the right file");
    for secret in [
        client.secret.as_deref().unwrap(),
        "Correct-Horse-Battery-Staple",
        &refresh_token,
    ] {
        assert!(
            !haystack.contains(secret),
            "found a secret in the database file"
        );
    }
}

/// Runs a command that must fail, checks that it failed as SPEC §3 says (a
/// non-zero exit, nothing on stdout, one line on stderr) and returns that line.
fn refused(database_url: &str, args: &[&str]) -> String {
    let output = cli_output(database_url, args, None);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(output.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    stderr
}

#[test]
fn client_create_registers_redirect_uris_skip_consent_and_pkce() {
    let db = TestDb::new();
    let plain = cli(&db.url, &["client", "create", "--name", "plain"]);
    assert_eq!(plain["redirect_uris"], serde_json::json!([]));
    assert_eq!(plain["skip_consent"], false);
    assert_eq!(plain["pkce"], "required");

    let web = cli(
        &db.url,
        &[
            "client",
            "create",
            "--name",
            "web",
            "--grant-types",
            "authorization_code,refresh_token,implicit",
            "--redirect-uri",
            "https://app.example/cb?from=oauthd",
            "--redirect-uri",
            "http://127.0.0.1:8080/cb",
            "--skip-consent",
            "--pkce",
            "optional",
        ],
    );
    assert_eq!(
        web["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token", "implicit"])
    );
    let uris = serde_json::json!([
        "https://app.example/cb?from=oauthd",
        "http://127.0.0.1:8080/cb"
    ]);
    assert_eq!(web["redirect_uris"], uris);
    assert_eq!(web["skip_consent"], true);
    assert_eq!(web["pkce"], "optional");
    assert!(web["client_secret"].is_string());

    let native = cli(
        &db.url,
        &[
            "client",
            "create",
            "--name",
            "native",
            "--public",
            "--grant-types",
            "authorization_code",
            "--redirect-uri",
            "com.example.app:/oauth2redirect",
            "--redirect-uri",
            "http://[::1]/cb",
        ],
    );
    assert_eq!(
        native["redirect_uris"],
        serde_json::json!(["com.example.app:/oauth2redirect", "http://[::1]/cb"])
    );
    assert_eq!(native["pkce"], "required");
    assert!(native.get("client_secret").is_none());

    let shown = cli(
        &db.url,
        &["client", "show", web["client_id"].as_str().unwrap()],
    );
    assert_eq!(shown["redirect_uris"], uris);
    assert_eq!(shown["skip_consent"], true);
    assert_eq!(shown["pkce"], "optional");
    let listed = cli(&db.url, &["client", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for client in listed {
        assert!(client["redirect_uris"].is_array(), "{client}");
        assert!(client["skip_consent"].is_boolean(), "{client}");
        assert!(client["pkce"].is_string(), "{client}");
    }
    let listed_web = listed
        .iter()
        .find(|client| client["client_id"] == web["client_id"])
        .unwrap();
    assert_eq!(listed_web["redirect_uris"], uris);
}

#[test]
fn client_create_refuses_what_spec_7_refuses() {
    let db = TestDb::new();
    let code = ["--grant-types", "authorization_code"];
    for (extra, reason) in [
        (
            &["--redirect-uri", "javascript:alert(1)"][..],
            "scheme javascript:",
        ),
        (&["--redirect-uri", "data:text/html,hi"], "scheme data:"),
        (&["--redirect-uri", "https://app.example/cb#"], "fragment"),
        (
            &["--redirect-uri", "https://app.example/cb#done"],
            "fragment",
        ),
        (
            &["--redirect-uri", "https://me@app.example/cb"],
            "user-info",
        ),
        (&["--redirect-uri", "http://app.example/cb"], "loopback"),
        (&["--redirect-uri", "/cb"], "absolute"),
        (&["--redirect-uri", "https://app.example/a b"], "whitespace"),
        (
            &["--redirect-uri", "com.example.app:/cb"],
            "public (native) clients only",
        ),
        (&[], "authorization_code needs at least one --redirect-uri"),
        (
            &[
                "--pkce",
                "optional",
                "--public",
                "--redirect-uri",
                "com.example.app:/cb",
            ],
            "--pkce optional is for confidential clients only",
        ),
        (
            &[
                "--skip-consent",
                "--public",
                "--redirect-uri",
                "https://app.example/cb",
            ],
            "--skip-consent is for first-party confidential clients only",
        ),
    ] {
        let mut args = vec!["client", "create", "--name", "x"];
        args.extend_from_slice(&code);
        args.extend_from_slice(extra);
        let stderr = refused(&db.url, &args);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    let implicit = refused(
        &db.url,
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-types",
            "implicit",
        ],
    );
    assert!(implicit.contains("implicit needs"), "{implicit}");
    assert_eq!(cli(&db.url, &["client", "list"]), serde_json::json!([]));
}

#[test]
fn client_update_changes_only_what_it_names() {
    let db = TestDb::new();
    let created = cli(
        &db.url,
        &[
            "client",
            "create",
            "--name",
            "web",
            "--grant-types",
            "authorization_code,refresh_token",
            "--scopes",
            "read",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "https://b.example/cb",
            "--skip-consent",
        ],
    );
    let id = created["client_id"].as_str().unwrap();
    let unchanged = |value: &serde_json::Value, except: &[&str]| {
        for (key, was) in created.as_object().unwrap() {
            if key != "client_secret" && !except.contains(&key.as_str()) {
                assert_eq!(&value[key], was, "{key} changed");
            }
        }
        assert!(value.get("client_secret").is_none());
    };

    let renamed = cli(&db.url, &["client", "update", id, "--name", "web app"]);
    assert_eq!(renamed["name"], "web app");
    unchanged(&renamed, &["name"]);
    assert_eq!(cli(&db.url, &["client", "show", id]), renamed);

    let moved = cli(
        &db.url,
        &[
            "client",
            "update",
            id,
            "--redirect-uri",
            "https://c.example/cb",
        ],
    );
    assert_eq!(
        moved["redirect_uris"],
        serde_json::json!(["https://c.example/cb"]),
        "the list is replaced, not added to"
    );
    unchanged(&moved, &["name", "redirect_uris"]);

    let asking = cli(&db.url, &["client", "update", id, "--ask-consent"]);
    assert_eq!(asking["skip_consent"], false);
    unchanged(&asking, &["name", "redirect_uris", "skip_consent"]);

    let rest = cli(
        &db.url,
        &[
            "client",
            "update",
            "--grant-types",
            "authorization_code,implicit",
            "--scopes",
            "read write",
            "--access-token-ttl",
            "120",
            "--pkce",
            "optional",
            "--skip-consent",
            id,
        ],
    );
    assert_eq!(
        rest["grant_types"],
        serde_json::json!(["authorization_code", "implicit"])
    );
    assert_eq!(rest["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(rest["access_token_ttl"], 120);
    assert_eq!(rest["pkce"], "optional");
    assert_eq!(rest["skip_consent"], true);
    assert_eq!(rest["name"], "web app");
    assert_eq!(
        rest["redirect_uris"],
        serde_json::json!(["https://c.example/cb"])
    );
    unchanged(
        &rest,
        &[
            "name",
            "redirect_uris",
            "grant_types",
            "scopes",
            "access_token_ttl",
            "pkce",
        ],
    );
}

#[test]
fn client_update_refuses_a_client_the_rules_refuse_and_changes_nothing() {
    let db = TestDb::new();
    let service = cli(&db.url, &["client", "create", "--name", "service"]);
    let service_id = service["client_id"].as_str().unwrap();
    let native = cli(
        &db.url,
        &[
            "client",
            "create",
            "--name",
            "native",
            "--public",
            "--grant-types",
            "authorization_code",
            "--redirect-uri",
            "com.example.app:/cb",
        ],
    );
    let native_id = native["client_id"].as_str().unwrap();
    for (args, reason) in [
        (
            &[
                "client",
                "update",
                service_id,
                "--grant-types",
                "authorization_code",
            ][..],
            "authorization_code needs at least one --redirect-uri",
        ),
        (
            &[
                "client",
                "update",
                service_id,
                "--redirect-uri",
                "com.example.app:/cb",
            ],
            "public (native) clients only",
        ),
        (
            &[
                "client",
                "update",
                service_id,
                "--redirect-uri",
                "https://a.example/#",
            ],
            "fragment",
        ),
        (
            &[
                "client",
                "update",
                native_id,
                "--grant-types",
                "client_credentials",
            ],
            "a public client cannot use client_credentials",
        ),
        (
            &["client", "update", native_id, "--pkce", "optional"],
            "--pkce optional",
        ),
        (
            &["client", "update", native_id, "--skip-consent"],
            "--skip-consent",
        ),
        (
            &["client", "update", native_id, "--access-token-ttl", "0"],
            "positive number of seconds",
        ),
        (
            &["client", "update", "nope", "--name", "x"],
            "no client with id nope",
        ),
        (&["client", "update", native_id], "nothing to change"),
    ] {
        let stderr = refused(&db.url, args);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
    assert_eq!(cli(&db.url, &["client", "show", service_id]), {
        let mut shown = service.clone();
        shown.as_object_mut().unwrap().remove("client_secret");
        shown
    });
    assert_eq!(cli(&db.url, &["client", "show", native_id]), native);

    // Naming the redirect URIs the new grant needs in the same update is fine.
    let browser = cli(
        &db.url,
        &[
            "client",
            "update",
            service_id,
            "--grant-types",
            "client_credentials,authorization_code",
            "--redirect-uri",
            "https://a.example/cb",
        ],
    );
    assert_eq!(
        browser["grant_types"],
        serde_json::json!(["client_credentials", "authorization_code"])
    );
}

#[tokio::test]
async fn client_update_reaches_a_running_server_before_it_returns() {
    let db = TestDb::new();
    let client = create_client(&db.url, &["--scopes", "read"]);
    let server = Server::start(&db);
    let mut grpc = server.grpc().await;
    let asking_for_write = || oauthd::grpc::pb::IssueTokenRequest {
        scope: Some("write".into()),
        ..client_credentials_request(&client)
    };
    let refused = grpc.issue_token(asking_for_write()).await.unwrap_err();
    assert_eq!(oauth_error(&refused).1, "invalid_scope");

    cli(
        &db.url,
        &["client", "update", &client.id, "--scopes", "read write"],
    );
    grpc.issue_token(asking_for_write()).await.unwrap();
}

#[test]
fn user_sessions_logout_and_revoke_consent_answer_for_a_user_without_any() {
    let db = TestDb::new();
    create_user(
        &db.url,
        "ines",
        "pw-123456",
        &["--email", "ines@example.com"],
    );
    let client = create_client(&db.url, &[]);
    assert_eq!(
        cli(&db.url, &["user", "sessions", "ines"]),
        serde_json::json!([])
    );
    assert_eq!(
        cli(&db.url, &["user", "logout", "ines@example.com"]),
        serde_json::json!({ "username": "ines", "sessions_ended": 0 })
    );
    assert_eq!(
        cli(&db.url, &["user", "revoke-consent", "ines"]),
        serde_json::json!({ "username": "ines", "client_id": null, "consents_revoked": 0 })
    );
    assert_eq!(
        cli(
            &db.url,
            &["user", "revoke-consent", "ines", "--client", &client.id]
        ),
        serde_json::json!({ "username": "ines", "client_id": client.id, "consents_revoked": 0 })
    );

    for (args, reason) in [
        (&["user", "sessions", "nobody"][..], "no user nobody"),
        (&["user", "logout", "nobody"], "no user nobody"),
        (&["user", "revoke-consent", "nobody"], "no user nobody"),
        (
            &["user", "revoke-consent", "nobody", "--client", &client.id],
            "no user nobody",
        ),
        (
            &["user", "revoke-consent", "ines", "--client", "nope"],
            "no client with id nope",
        ),
    ] {
        let stderr = refused(&db.url, args);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

/// Runs SQL on the test database, as a browser login or consent would have
/// left rows behind.
async fn execute(database_url: &str, sql: &str) {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect(database_url).await.unwrap();
    db.execute_unprepared(sql).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn user_sessions_shows_only_times_and_logout_and_revoke_consent_count_what_went() {
    let db = TestDb::new();
    let ines = create_user(&db.url, "ines", "pw-123456", &[]);
    let ines = ines["id"].as_str().unwrap();
    let other = create_user(&db.url, "otto", "pw-123456", &[]);
    let other = other["id"].as_str().unwrap();
    let a = create_client(&db.url, &[]);
    let b = create_client(&db.url, &[]);
    execute(
        &db.url,
        &format!(
            "INSERT INTO sessions (session_hash, user_id, created_at, expires_at) VALUES \
             ('live-session-hash', '{ines}', 1700000100, 4000000000), \
             ('older-session-hash', '{ines}', 1700000000, 4000000000), \
             ('expired-session-hash', '{ines}', 1600000000, 1600086400), \
             ('others-session-hash', '{other}', 1700000000, 4000000000); \
             INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES \
             ('{ines}', '{a}', 'read', 1700000000), ('{ines}', '{b}', 'read', 1700000000), \
             ('{other}', '{a}', 'read', 1700000000)",
            a = a.id,
            b = b.id,
        ),
    )
    .await;

    let output = cli_output(&db.url, &["user", "sessions", "ines"], None);
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains("session-hash"), "{printed}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&printed).unwrap(),
        serde_json::json!([
            { "created_at": 1700000000, "expires_at": 4000000000_i64 },
            { "created_at": 1700000100, "expires_at": 4000000000_i64 },
        ]),
        "oldest first, and not the expired one"
    );

    let ended = cli(&db.url, &["user", "logout", "ines"]);
    assert_eq!(ended["sessions_ended"], 3, "the expired row goes too");
    assert_eq!(
        cli(&db.url, &["user", "sessions", "ines"]),
        serde_json::json!([])
    );
    assert_eq!(
        cli(&db.url, &["user", "sessions", "otto"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let one = cli(
        &db.url,
        &["user", "revoke-consent", "ines", "--client", &a.id],
    );
    assert_eq!(one["consents_revoked"], 1);
    let rest = cli(&db.url, &["user", "revoke-consent", "ines"]);
    assert_eq!(rest["consents_revoked"], 1);
    let others = cli(&db.url, &["user", "revoke-consent", "otto"]);
    assert_eq!(others["consents_revoked"], 1, "other users keep theirs");
}

#[test]
fn a_purge_interval_or_reuse_grace_that_is_not_a_number_is_refused_at_start() {
    for flag in ["--purge-interval", "--refresh-token-reuse-grace"] {
        for value in ["soon", "1.5", "", "10s"] {
            let output = std::process::Command::new(BIN)
                .args(["serve", "--database-url", "sqlite::memory:"])
                .arg(format!("{flag}={value}"))
                .env_remove("OAUTHD_CONFIG")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{flag}={value:?} was accepted");
            assert!(
                stderr.contains(&format!("invalid value '{value}' for '{flag}")),
                "{flag}={value:?}: {stderr}"
            );
        }
    }
}
