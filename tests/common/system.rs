//! Programs the system provides that the tests run (nginx, Caddy, Chromium):
//! finding them, installing them through the repository's `.ci/` scripts, and
//! collecting what they print.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The repository's root.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Looks on PATH, then in the sbin directories that are not on every
/// user's PATH (Debian installs nginx in /usr/sbin).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Runs an install script of `.ci/` (`script` relative to the repository),
/// with everything it printed in the error when it fails.
pub fn run_install_script(script: &str) -> Result<(), String> {
    let script = repository().join(script);
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}):\n{}{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Collects a child's output, line by line, as it comes.
pub fn capture(output: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    capture_into(output, Arc::clone(&log));
    log
}

/// Appends a child's output to `log`, line by line, as it comes: for one log
/// of both its stdout and its stderr.
pub fn capture_into(output: impl std::io::Read + Send + 'static, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}
