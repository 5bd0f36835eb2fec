//! The `oauthd` binary: parse the command line, start tracing, hand off to the
//! server or a management command. Nothing else.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use oauthd::cli::{Cli, Command, run_management};
use oauthd::config::{Config, LogFormat};
use oauthd::logs::{self, FlushOnDrop};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc: every request allocates and frees
/// dozens of small buffers across the runtime's threads, and glibc's arenas
/// took about a tenth of the server's CPU, some of it waiting on their locks.
/// With mimalloc an HS256 token over HTTP costs the server 14 % less CPU
/// (paired runs, 27.3 to 23.5 µs), and the server's CPU per request falls on
/// every bench line; the peak resident memory under the bench's load is 2.5
/// to 4 MiB higher.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let serving = matches!(cli.command, Command::Serve);
    let _flush_logs_at_exit =
        match init_tracing(config.log_format, if serving { "info" } else { "warn" }) {
            Ok(guard) => guard,
            Err(err) => return fail(&err),
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    let outcome = runtime.block_on(async move {
        if serving {
            oauthd::server::run(config).await
        } else {
            let value = run_management(cli.command, &config).await?;
            println!("{value}");
            Ok(())
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&format!("{err:#}")),
    }
}

/// The most bytes of log lines waiting to be written: about a tenth of a
/// second of lines at full load, many times what one write takes out.
const LOG_QUEUE_BYTES: usize = 1 << 20;

/// Logs go to standard error, so standard output carries only command results,
/// through `logs.rs`: formatting stays on the thread that logs, writing does not.
fn init_tracing(format: LogFormat, default_level: &str) -> std::io::Result<FlushOnDrop> {
    let (writer, guard) = logs::spawn(std::io::stderr(), LOG_QUEUE_BYTES)?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(guard)
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    let line = err.to_string().replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
