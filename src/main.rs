//! The `oauthd` binary: parse the command line, start tracing, hand off to the
//! server or a management command. Nothing else.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use oauthd::cli::{Cli, Command, run_management};
use oauthd::config::{Config, LogFormat};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let serving = matches!(cli.command, Command::Serve);
    let _flush_logs_at_exit =
        init_tracing(config.log_format, if serving { "info" } else { "warn" });
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

/// Lines the log queue holds. The queue is a ring whose every slot gets touched
/// in turn, so its length is resident memory: 8192 lines is 256 KiB, a quarter
/// of a second of lines at full load.
const LOG_QUEUE_LINES: usize = 8192;

/// Logs go to standard error, so standard output carries only command results.
///
/// A dedicated thread writes them: formatting stays on the thread that logs, but
/// the write does not, and lines that queue up while it writes go out in one
/// call. At thousands of requests a second that is most of what logging cost.
/// If the queue ever fills (standard error blocked), lines are dropped rather
/// than requests stalled. The returned guard flushes the queue when dropped.
fn init_tracing(format: LogFormat, default_level: &str) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .thread_name("oauthd-log")
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::BufWriter::new(std::io::stderr()));
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
    guard
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    let line = err.to_string().replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
