//! Real reverse proxies in front of oauthd's request check (SPEC §9): nginx
//! with `auth_request` and Caddy with `forward_auth`, each running the very
//! configuration file that README shows, from `deploy/proxies/`, with only its
//! well-known addresses changed to free loopback ports.
//!
//! Neither is ever skipped: when one is missing, the harness runs
//! `.ci/proxies.sh` once per test process, and fails the test, naming what is
//! missing and how to get it, if that did not help.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::system::{capture, find_program, repository, run_install_script};

/// The addresses the deployment files use, which the harness replaces.
const OAUTHD_HTTP: &str = "127.0.0.1:3030";
const UPSTREAM: &str = "127.0.0.1:8080";
const NGINX_LISTEN: &str = "127.0.0.1:8000";
/// Caddy's site address: port 8000 on every interface, narrowed by `bind`.
const CADDY_SITE: &str = ":8000 {";

/// nginx running `deploy/proxies/nginx.conf`, killed on drop.
pub struct Nginx {
    pub addr: SocketAddr,
    process: ProxyProcess,
}

impl Nginx {
    /// nginx on a free loopback port, asking the oauthd at `oauthd_http` and
    /// passing allowed requests to `upstream`.
    pub fn start(oauthd_http: SocketAddr, upstream: SocketAddr) -> Self {
        let binary = installed("nginx");
        let site = deployed(
            "nginx.conf",
            &[
                (OAUTHD_HTTP, oauthd_http.to_string()),
                (UPSTREAM, upstream.to_string()),
            ],
        );
        let (addr, process) = start_proxy("nginx", |addr, dir| {
            let site = with_addresses(site.clone(), &[(NGINX_LISTEN, addr.to_string())]);
            std::fs::write(dir.join("site.conf"), site).unwrap();
            // What a packaged nginx.conf would give around the site: temporary
            // files and logs inside the test's own directory.
            std::fs::write(dir.join("nginx.conf"), NGINX_MAIN).unwrap();
            let mut command = Command::new(&binary);
            command
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .args(["-e", "stderr", "-g"])
                // In the foreground, as one process: no worker outlives a kill,
                // and none switches to another user when the tests run as root.
                .arg(format!(
                    "daemon off; master_process off; error_log stderr notice; pid {};",
                    dir.join("nginx.pid").display()
                ));
            command
        });
        Self { addr, process }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// nginx's error and access log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// The `http` block that includes the site, with paths relative to `-p`.
const NGINX_MAIN: &str = "\
events {}
http {
    access_log /dev/stderr;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    include site.conf;
}
";

/// Caddy running `deploy/proxies/Caddyfile`, killed on drop.
pub struct Caddy {
    pub addr: SocketAddr,
    process: ProxyProcess,
}

impl Caddy {
    /// Caddy on a free loopback port, asking the oauthd at `oauthd_http` and
    /// passing allowed requests to `upstream`.
    pub fn start(oauthd_http: SocketAddr, upstream: SocketAddr) -> Self {
        let binary = installed("caddy");
        let caddyfile = deployed(
            "Caddyfile",
            &[
                (OAUTHD_HTTP, oauthd_http.to_string()),
                (UPSTREAM, upstream.to_string()),
            ],
        );
        let (addr, process) = start_proxy("Caddy", |addr, dir| {
            assert_eq!(addr.ip().to_string(), "127.0.0.1", "the Caddyfile binds it");
            let caddyfile = with_addresses(
                caddyfile.clone(),
                &[(CADDY_SITE, format!(":{} {{", addr.port()))],
            );
            let path = dir.join("Caddyfile");
            std::fs::write(&path, caddyfile).unwrap();
            let mut command = Command::new(&binary);
            command
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(&path)
                // Caddy keeps certificates and its autosaved configuration
                // under these; each instance gets its own.
                .env("HOME", dir)
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config"));
            command
        });
        Self { addr, process }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Caddy's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A proxy's process, its captured output and its directory.
struct ProxyProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl ProxyProcess {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a proxy on a free loopback port and waits until that port answers
/// as `name`. A free port can be taken by another process between our finding
/// it and the proxy binding it; the proxy then fails to bind and is started
/// again on another.
fn start_proxy(
    name: &str,
    mut command: impl FnMut(SocketAddr, &Path) -> Command,
) -> (SocketAddr, ProxyProcess) {
    for _ in 0..5 {
        let addr = free_loopback_port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = command(addr, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {name}: {err}"));
        let log = capture(child.stderr.take().unwrap());
        let mut process = ProxyProcess {
            child,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = process.child.try_wait().unwrap() {
                // Let the reader thread take in the last lines.
                std::thread::sleep(Duration::from_millis(100));
                let log = process.log();
                if log.to_lowercase().contains("address already in use") {
                    break;
                }
                panic!("{name} exited with {status}; its log:\n{log}");
            }
            if answers_as(addr, name) {
                return (addr, process);
            }
            assert!(
                Instant::now() < deadline,
                "{name} does not answer on {addr}; its log:\n{}",
                process.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("{name}: every free port found was taken before it could bind it");
}

/// Whether an HTTP request to `addr` is answered by `name` (its `Server`
/// header), rather than by nothing or by another process.
fn answers_as(addr: SocketAddr, name: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or("").to_lowercase();
    head.lines()
        .any(|line| line.starts_with(&format!("server: {}", name.to_lowercase())))
}

fn free_loopback_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A file of `deploy/proxies/`, with its well-known addresses replaced.
fn deployed(name: &str, addresses: &[(&str, String)]) -> String {
    let path = repository().join("deploy/proxies").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    with_addresses(text, addresses)
}

/// Replaces each address, which must be there: a test that silently kept a
/// well-known port would talk to whatever listens on it.
fn with_addresses(mut text: String, addresses: &[(&str, String)]) -> String {
    for (from, to) in addresses {
        assert!(
            text.contains(from),
            "the deployment file no longer mentions {from}"
        );
        text = text.replace(from, to);
    }
    text
}

/// The path of an installed proxy. A missing one is installed by
/// `.ci/proxies.sh` (once per test process); if that fails, the test fails
/// with what is missing and how to get it.
fn installed(program: &str) -> PathBuf {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(path) = find_program(program) {
        return path;
    }
    if let Err(why) = INSTALL.get_or_init(|| run_install_script(".ci/proxies.sh")) {
        panic!(
            "tests/proxies.rs needs nginx and caddy, and {program} is not installed. \
             .ci/proxies.sh could not install it:\n{why}\n\
             Install both with `sudo .ci/proxies.sh` (on Debian: `sudo apt-get install nginx caddy`)."
        );
    }
    find_program(program).unwrap_or_else(|| {
        panic!(
            "tests/proxies.rs needs {program}, which .ci/proxies.sh ran without installing. \
             Install it with `sudo apt-get install {program}`."
        )
    })
}
