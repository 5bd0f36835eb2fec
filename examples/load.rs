//! The load driver behind `bench/run.sh`.
//!
//! - `load grpc`: drives one scenario over gRPC with the generated tonic client,
//!   closed loop, one request in flight per connection, and prints one JSON line
//!   (requests, errors, rate, p50/p99/p99.9). No gRPC load tool installs here.
//! - `load startup`: times `oauthd serve` from spawn to SERVING on an existing
//!   database.
//! - `load report`: turns the collected JSON lines into BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use oauthd::grpc::pb;
use oauthd::grpc::pb::token_service_client::TokenServiceClient;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive one gRPC scenario.
    Grpc {
        #[arg(long)]
        addr: String,
        #[arg(long, value_enum)]
        scenario: Scenario,
        /// Name of the result line.
        #[arg(long)]
        label: String,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value = "")]
        client_id: String,
        #[arg(long, default_value = "")]
        client_secret: String,
        #[arg(long, default_value = "")]
        username: String,
        #[arg(long, default_value = "")]
        password: String,
    },
    /// Time `oauthd serve` from spawn to SERVING.
    Startup {
        #[arg(long)]
        bin: String,
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Render BENCHMARKS.md from the collected result lines.
    Report {
        #[arg(long)]
        results: String,
        #[arg(long)]
        backend: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    ClientCredentials,
    Introspect,
    Refresh,
    Password,
    /// A no-op unary RPC (health Check): the gRPC floor.
    Floor,
}

#[derive(Clone)]
struct Target {
    channel: Channel,
    client: pb::ClientCredentials,
    username: String,
    password: String,
}

impl Target {
    fn token_request(&self, grant_type: &str) -> pb::IssueTokenRequest {
        let password_grant = grant_type == "password";
        pb::IssueTokenRequest {
            client: Some(self.client.clone()),
            grant_type: grant_type.into(),
            username: password_grant.then(|| self.username.clone()),
            password: password_grant.then(|| self.password.clone()),
            ..Default::default()
        }
    }
}

/// One worker's state: what it needs between calls.
enum Worker {
    ClientCredentials(TokenServiceClient<Channel>),
    Introspect(TokenServiceClient<Channel>, String),
    Refresh(TokenServiceClient<Channel>, String),
    Password(TokenServiceClient<Channel>),
    Floor(HealthClient<Channel>),
}

impl Worker {
    async fn new(scenario: Scenario, target: &Target) -> anyhow::Result<Self> {
        let mut tokens = TokenServiceClient::new(target.channel.clone());
        Ok(match scenario {
            Scenario::ClientCredentials => Self::ClientCredentials(tokens),
            Scenario::Password => Self::Password(tokens),
            Scenario::Floor => Self::Floor(HealthClient::new(target.channel.clone())),
            Scenario::Introspect => {
                let issued = tokens
                    .issue_token(target.token_request("client_credentials"))
                    .await?;
                Self::Introspect(tokens, issued.into_inner().access_token)
            }
            Scenario::Refresh => {
                let issued = tokens
                    .issue_token(target.token_request("password"))
                    .await?
                    .into_inner();
                let refresh = issued.refresh_token.context("the client may not refresh")?;
                Self::Refresh(tokens, refresh)
            }
        })
    }

    /// One request; `Ok(false)` for an answer that is not what the scenario expects.
    async fn call(&mut self, target: &Target) -> anyhow::Result<bool> {
        match self {
            Self::ClientCredentials(tokens) => {
                tokens
                    .issue_token(target.token_request("client_credentials"))
                    .await?;
                Ok(true)
            }
            Self::Password(tokens) => {
                tokens.issue_token(target.token_request("password")).await?;
                Ok(true)
            }
            Self::Introspect(tokens, token) => {
                let request = pb::IntrospectRequest {
                    client: Some(target.client.clone()),
                    token: token.clone(),
                    token_type_hint: None,
                };
                Ok(tokens.introspect(request).await?.into_inner().active)
            }
            Self::Refresh(tokens, refresh) => {
                let request = pb::RefreshTokenRequest {
                    client: Some(target.client.clone()),
                    refresh_token: refresh.clone(),
                    scope: None,
                };
                let issued = tokens.refresh_token(request).await?.into_inner();
                *refresh = issued.refresh_token.context("no refresh token")?;
                Ok(true)
            }
            Self::Floor(health) => {
                let answer = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
                Ok(answer.into_inner().status() == ServingStatus::Serving)
            }
        }
    }
}

async fn drive(
    scenario: Scenario,
    label: &str,
    targets: Vec<Target>,
    duration: Duration,
) -> anyhow::Result<Value> {
    let mut workers = Vec::new();
    for target in &targets {
        workers.push(Worker::new(scenario, target).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (mut worker, target) in workers.into_iter().zip(targets) {
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let ok = matches!(worker.call(&target).await, Ok(true));
                latencies.saturating_record(sent.elapsed().as_micros() as u64);
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for task in tasks {
        let (histogram, failed) = task.await?;
        latencies.add(histogram)?;
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    Ok(json!({
        "label": label,
        "transport": "grpc",
        "requests": latencies.len(),
        "errors": errors,
        "seconds": seconds,
        "rps": latencies.len() as f64 / seconds,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
    }))
}

async fn startup(bin: &str, database_url: &str, runs: usize) -> anyhow::Result<Value> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--database-url",
                database_url,
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split("gRPC listening on ")
                    .nth(1)
                    .map(|rest| rest.trim().to_owned())
            })
            .context("the server did not report its address")?;
        // Keep reading, so the server never writes its log into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        loop {
            if let Ok(channel) = Endpoint::from_shared(format!("http://{addr}"))?
                .connect()
                .await
            {
                let mut health = HealthClient::new(channel);
                let answer = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if answer.is_ok_and(|a| a.into_inner().status() == ServingStatus::Serving) {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("the server did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        child.kill()?;
        child.wait()?;
    }
    times.sort_by(f64::total_cmp);
    Ok(
        json!({ "label": "startup", "median_ms": times[times.len() / 2], "max_ms": times[times.len() - 1] }),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Grpc {
            addr,
            scenario,
            label,
            connections,
            duration,
            client_id,
            client_secret,
            username,
            password,
        } => {
            let client = pb::ClientCredentials {
                client_id,
                client_secret: Some(client_secret),
            };
            let mut targets = Vec::new();
            for _ in 0..connections {
                // One TCP connection per worker, as wrk does for HTTP.
                let channel = Endpoint::from_shared(format!("http://{addr}"))?
                    .tcp_nodelay(true)
                    .connect()
                    .await?;
                targets.push(Target {
                    channel,
                    client: client.clone(),
                    username: username.clone(),
                    password: password.clone(),
                });
            }
            let result = drive(scenario, &label, targets, Duration::from_secs(duration)).await?;
            println!("{result}");
        }
        Cmd::Startup {
            bin,
            database_url,
            runs,
        } => println!("{}", startup(&bin, &database_url, runs).await?),
        Cmd::Report { results, backend } => {
            print!("{}", report(&std::fs::read_to_string(results)?, &backend)?)
        }
    }
    Ok(())
}

fn report(results: &str, backend: &str) -> anyhow::Result<String> {
    let lines: Vec<Value> = results
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let find = |label: &str| lines.iter().find(|line| line["label"] == label);
    let rate = |label: &str| find(label).and_then(|l| l["rps"].as_f64()).unwrap_or(0.0);
    let p99 = |label: &str| {
        find(label)
            .and_then(|l| l["p99_ms"].as_f64())
            .unwrap_or(f64::INFINITY)
    };
    let floor_of = |transport: &str| {
        rate(if transport == "http" {
            "floor-http"
        } else {
            "floor-grpc"
        })
    };

    let mut out = String::new();
    let meta = find("meta").cloned().unwrap_or_default();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&format!(
        "Written by `bench/run.sh` on {} ({} cores, backend: {backend}); {} connections, {} s per scenario, the load generator on the same machine. HTTP load from `wrk`, gRPC load from `examples/load.rs` (tonic client, one request in flight per connection). Absolute rates drift between runs on shared machines; the ratio to the floor of the same run is the figure to compare.\n\n",
        meta["date"].as_str().unwrap_or("?"),
        meta["cores"],
        meta["connections"],
        meta["duration"],
    ));
    out.push_str("| scenario | transport | req/s | ratio to floor | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for line in lines.iter().filter(|l| l["rps"].is_number()) {
        let transport = line["transport"].as_str().unwrap_or("?");
        let floor = floor_of(transport);
        let ratio = if floor > 0.0 {
            format!(
                "{:.0} %",
                100.0 * line["rps"].as_f64().unwrap_or(0.0) / floor
            )
        } else {
            "-".into()
        };
        out.push_str(&format!(
            "| {} | {transport} | {:.0} | {ratio} | {:.2} | {:.2} | {:.2} | {} |\n",
            line["label"].as_str().unwrap_or("?"),
            line["rps"].as_f64().unwrap_or(0.0),
            line["p50_ms"].as_f64().unwrap_or(0.0),
            line["p99_ms"].as_f64().unwrap_or(0.0),
            line["p999_ms"].as_f64().unwrap_or(0.0),
            line["errors"],
        ));
    }
    let rss_mib = find("rss")
        .and_then(|l| l["kib"].as_f64())
        .unwrap_or(f64::INFINITY)
        / 1024.0;
    let startup_ms = find("startup")
        .and_then(|l| l["median_ms"].as_f64())
        .unwrap_or(f64::INFINITY);
    let errors: u64 = lines.iter().filter_map(|l| l["errors"].as_u64()).sum();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    // A budget line that asks for a ratio of at least `floor`.
    let at_least = |line: &'static str, measured: f64, floor: f64| {
        (
            line,
            format!("{:.0} %", 100.0 * measured),
            measured >= floor,
        )
    };
    let budget = [
        at_least(
            "client_credentials over HTTP ≥ 50 % of the HTTP floor",
            ratio(rate("client_credentials-http"), floor_of("http")),
            0.5,
        ),
        at_least(
            "client_credentials over gRPC ≥ 50 % of the gRPC floor",
            ratio(rate("client_credentials-grpc"), floor_of("grpc")),
            0.5,
        ),
        at_least(
            "Introspect (JWT) over gRPC ≥ 70 % of the gRPC floor",
            ratio(rate("introspect-grpc"), floor_of("grpc")),
            0.7,
        ),
        at_least(
            "refresh rotation ≥ 20 % of the client_credentials rate (gRPC)",
            ratio(rate("refresh-grpc"), rate("client_credentials-grpc")),
            0.2,
        ),
        (
            "p99 ≤ 5 ms for client_credentials and Introspect",
            format!(
                "worst {:.2} ms",
                [
                    "client_credentials-http",
                    "client_credentials-grpc",
                    "introspect-http",
                    "introspect-grpc"
                ]
                .iter()
                .map(|l| p99(l))
                .fold(0.0, f64::max)
            ),
            [
                "client_credentials-http",
                "client_credentials-grpc",
                "introspect-http",
                "introspect-grpc",
            ]
            .iter()
            .all(|l| p99(l) <= 5.0),
        ),
        (
            "zero errors in every scenario",
            format!("{errors} errors"),
            errors == 0,
        ),
        (
            "peak RSS ≤ 40 MiB after all scenarios",
            format!("{rss_mib:.1} MiB"),
            rss_mib <= 40.0,
        ),
        (
            "start to ready ≤ 150 ms on an existing SQLite database",
            format!("{startup_ms:.0} ms (median)"),
            startup_ms <= 150.0,
        ),
        (
            "client_credentials p99 ≤ 10 ms during a burst of password logins",
            format!(
                "{:.2} ms, logins at {:.0}/s",
                p99("client_credentials-during-logins"),
                rate("password-burst")
            ),
            p99("client_credentials-during-logins") <= 10.0,
        ),
    ];
    out.push_str("\n## Budget\n\n| line | measured | verdict |\n|---|---|---|\n");
    for (line, measured, ok) in budget {
        out.push_str(&format!("| {line} | {measured} | {} |\n", verdict(ok)));
    }
    out.push_str(&format!(
        "\nPassword logins are bounded by Argon2id by design: {:.0} logins/s over gRPC at the production cost.\n",
        rate("password-grpc")
    ));
    Ok(out)
}
