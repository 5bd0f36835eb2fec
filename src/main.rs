//! The `oauthd` binary: parse the command line, start tracing, hand off to the
//! server or a management command. Nothing else.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use oauthd::cli::{Cli, Command, run_management};
use oauthd::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let serving = matches!(cli.command, Command::Serve);
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

/// Logs go to standard error, so standard output carries only command results.
fn init_tracing(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    let line = err.to_string().replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
