//! The test harness: a fresh database (a temporary SQLite file, or a new
//! PostgreSQL database when `OAUTHD_TEST_DATABASE_URL` names a server), the real
//! `oauthd` binary started on port 0 with the bound addresses read from its log,
//! and clients for gRPC, HTTP and the CLI.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]
// The harness measures wall-clock time for its own timeouts; the rule that only
// clock.rs reads the clock is about the server.
#![allow(clippy::disallowed_methods)]

/// The identity headers of SPEC §9, lowercase, in the order oauthd sends them.
pub const IDENTITY_HEADERS: [&str; 6] = [
    "x-auth-subject",
    "x-auth-client-id",
    "x-auth-username",
    "x-auth-scope",
    "x-auth-credential",
    "x-auth-expires",
];

pub mod browser;
pub mod codes;
pub mod flows;
pub mod proxies;
pub mod system;
pub mod tls;
pub mod upstream;
pub mod user_agent;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauthd::grpc::pb;
use oauthd::grpc::pb::token_service_client::TokenServiceClient;
use serde_json::Value;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_oauthd");

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    /// The SQLite file, when the backend is SQLite.
    pub sqlite_path: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn new() -> Self {
        match std::env::var("OAUTHD_TEST_DATABASE_URL") {
            Ok(server) if !server.is_empty() => Self::postgres(&server),
            _ => Self::sqlite(),
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oauthd.db");
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            sqlite_path: Some(path),
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A PostgreSQL database, for tests that need a network database: on the
    /// server `OAUTHD_TEST_DATABASE_URL` names, else the local default. Fails,
    /// never skips, when no server answers.
    pub fn postgres_required() -> Self {
        let server = std::env::var("OAUTHD_TEST_DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"))
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        Self::postgres(&server)
    }

    fn postgres(server: &str) -> Self {
        let name = format!(
            "oauthd_test_{}",
            oauthd::tokens::secret::new_id()
                .to_lowercase()
                .replace(['-', '_'], "")
        );
        run_postgres(server, &format!("CREATE DATABASE {name}"));
        // CI runs the PostgreSQL suite a second time with every transaction
        // SERIALIZABLE, where concurrent writes fail with 40001 and the store
        // must retry them (src/store/retry.rs).
        if let Ok(level) = std::env::var("OAUTHD_TEST_PG_ISOLATION") {
            assert!(
                ["serializable", "repeatable read", "read committed"].contains(&level.as_str()),
                "OAUTHD_TEST_PG_ISOLATION: unknown isolation level {level:?}"
            );
            run_postgres(
                server,
                &format!("ALTER DATABASE {name} SET default_transaction_isolation = '{level}'"),
            );
        }
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        Self {
            url: format!("{base}/{name}"),
            sqlite_path: None,
            _dir: None,
            postgres: Some((server.to_owned(), name)),
        }
    }

    /// A database of its own on the PostgreSQL server, whose transactions
    /// are all `SERIALIZABLE`: concurrent writes conflict there (40001).
    pub fn postgres_serializable() -> Self {
        let db = Self::postgres_required();
        let (server, name) = db.postgres.as_ref().unwrap();
        run_postgres(
            server,
            &format!("ALTER DATABASE {name} SET default_transaction_isolation = 'serializable'"),
        );
        db
    }

    /// The same database reached through another host and port (a proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let (_, name) = self.postgres.as_ref().expect("a PostgreSQL database");
        format!("postgres://postgres@{addr}/{name}")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.postgres {
            run_postgres(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Runs one statement on the PostgreSQL server, on a runtime of its own so it
/// works from `Drop` and from synchronous code alike.
fn run_postgres(server: &str, statement: &str) {
    let server = server.to_owned();
    let statement = statement.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            use sea_orm::ConnectionTrait as _;
            let db = sea_orm::Database::connect(&server)
                .await
                .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {server}: {err}"));
            db.execute_unprepared(&statement).await.unwrap();
            db.close().await.unwrap();
        });
    })
    .join()
    .unwrap();
}

/// A running `oauthd serve`, killed on drop.
pub struct Server {
    child: Child,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[])
    }

    pub fn start_with(db: &TestDb, args: &[&str]) -> Self {
        Self::start_on(&db.url, args)
    }

    pub fn start_on(database_url: &str, args: &[&str]) -> Self {
        Self::spawn(database_url, args, false)
    }

    /// A server with the login throttle on, at its defaults unless `args` say
    /// otherwise. Elsewhere it is off: tests log in from one address faster,
    /// and more often in parallel, than any person would.
    pub fn start_throttled(db: &TestDb, args: &[&str]) -> Self {
        Self::spawn(&db.url, args, true)
    }

    fn spawn(database_url: &str, args: &[&str], throttled: bool) -> Self {
        let mut command = Command::new(BIN);
        if !throttled {
            command
                .env("OAUTHD_LOGIN_THROTTLE_MAX_FAILURES", "0")
                .env("OAUTHD_LOGIN_THROTTLE_MAX_CONCURRENT", "0");
        }
        let mut child = command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .args(["--database-url", database_url])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("OAUTHD_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                for (marker, kind) in [
                    ("gRPC listening on ", "grpc"),
                    ("HTTP listening on ", "http"),
                ] {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let addr: SocketAddr =
                            rest.split_whitespace().next().unwrap().parse().unwrap();
                        let _ = addr_tx.send((kind, addr));
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (mut grpc, mut http) = (None, None);
        while grpc.is_none() || http.is_none() {
            match addr_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(("grpc", addr)) => grpc = Some(addr),
                Ok((_, addr)) => http = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; log:\n{}", log.lock().unwrap());
                }
            }
        }
        Self {
            child,
            grpc_addr: grpc.unwrap(),
            http_addr: http.unwrap(),
            database_url: database_url.to_owned(),
            log,
        }
    }

    pub async fn grpc(&self) -> TokenServiceClient<Channel> {
        TokenServiceClient::connect(format!("http://{}", self.grpc_addr))
            .await
            .unwrap()
    }

    /// A `client_credentials` token over gRPC, which must be issued.
    pub async fn client_credentials_token(&self, client: &TestClient) -> pb::TokenResponse {
        self.grpc()
            .await
            .issue_token(client_credentials_request(client))
            .await
            .unwrap()
            .into_inner()
    }

    /// Whether `caller` finds `token` active through gRPC introspection.
    pub async fn is_active(&self, caller: &TestClient, token: &str) -> bool {
        let mut grpc = self.grpc().await;
        grpc.introspect(introspect_request(caller, token))
            .await
            .unwrap()
            .into_inner()
            .active
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// The server's process id, to read its `/proc` entries.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait()
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits (up to 20 s) for the process to exit.
    pub fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a management command against `database_url`.
pub fn cli_output(database_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--database-url", database_url])
        .env_remove("OAUTHD_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs a management command that must succeed, and parses its JSON.
pub fn cli(database_url: &str, args: &[&str]) -> Value {
    cli_with_stdin(database_url, args, None)
}

pub fn cli_with_stdin(database_url: &str, args: &[&str], stdin: Option<&str>) -> Value {
    let output = cli_output(database_url, args, stdin);
    assert!(
        output.status.success(),
        "oauthd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A registered client's credentials.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestClient {
    pub fn credentials(&self) -> Option<pb::ClientCredentials> {
        Some(pb::ClientCredentials {
            client_id: self.id.clone(),
            client_secret: self.secret.clone(),
        })
    }

    pub fn with_secret(&self, secret: &str) -> Option<pb::ClientCredentials> {
        Some(pb::ClientCredentials {
            client_id: self.id.clone(),
            client_secret: Some(secret.to_owned()),
        })
    }
}

pub fn create_client(database_url: &str, extra: &[&str]) -> TestClient {
    let mut args = vec!["client", "create", "--name", "test"];
    args.extend_from_slice(extra);
    let value = cli(database_url, &args);
    TestClient {
        id: value["client_id"].as_str().unwrap().to_owned(),
        secret: value["client_secret"].as_str().map(str::to_owned),
    }
}

/// A client allowed every grant, with scopes `read write`.
pub fn create_full_client(database_url: &str) -> TestClient {
    create_client(
        database_url,
        &[
            "--grant-types",
            "client_credentials,password,refresh_token",
            "--scopes",
            "read write",
        ],
    )
}

pub fn create_user(database_url: &str, username: &str, password: &str, extra: &[&str]) -> Value {
    let mut args = vec!["user", "create", "--username", username, "--password-stdin"];
    args.extend_from_slice(extra);
    cli_with_stdin(database_url, &args, Some(&format!("{password}\n")))
}

pub fn password_request(
    client: &TestClient,
    username: &str,
    password: &str,
) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        client: client.credentials(),
        grant_type: "password".into(),
        username: Some(username.into()),
        password: Some(password.into()),
        ..Default::default()
    }
}

pub fn client_credentials_request(client: &TestClient) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        client: client.credentials(),
        grant_type: "client_credentials".into(),
        ..Default::default()
    }
}

pub fn introspect_request(caller: &TestClient, token: &str) -> pb::IntrospectRequest {
    pb::IntrospectRequest {
        client: caller.credentials(),
        token: token.into(),
        token_type_hint: None,
    }
}

/// The OAuth error a failed RPC carried: (gRPC code, ErrorInfo reason, description).
pub fn oauth_error(status: &tonic::Status) -> (tonic::Code, String, String) {
    use tonic_types::StatusExt as _;
    let info = status
        .get_details_error_info()
        .expect("status carries google.rpc.ErrorInfo");
    assert_eq!(info.domain, "oauthd");
    (status.code(), info.reason, status.message().to_owned())
}

/// The value of one series of `/metrics` (0 while it has not appeared).
pub async fn metric(server: &Server, series: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    series_value(&text, series)
}

/// The value of one series in a `/metrics` text (0 while it has not appeared).
pub fn series_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// Rows in `table`, straight from the database.
pub async fn rows(url: &str, table: &str) -> i64 {
    use sea_orm::ConnectionTrait as _;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
