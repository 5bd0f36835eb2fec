//! Headless Chromium, driven over WebDriver (fantoccini) through Debian's
//! `chromedriver`, for the browser flows: open a page, fill a field, press a
//! button, see where the browser landed, and take a screenshot.
//!
//! Each [`Browser`] has a chromedriver of its own, on a port the driver chose
//! and printed, and a Chromium profile in a temporary directory; both go when
//! it is dropped, with every process Chromium started.
//!
//! Never skipped: when Chromium or chromedriver is missing, the harness runs
//! `.ci/browser.sh` once per test process, and fails the test, naming what is
//! missing and how to get it, if that did not help.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::system::{capture, capture_into, find_program, run_install_script};

/// How long a helper waits for an element to appear, or for the browser to
/// reach a URL: pages here are local and small, so anything longer is a hang.
const WAIT: Duration = Duration::from_secs(10);

/// The size and kind of screen the browser shows its pages on. Screenshots
/// have exactly its size, in device pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// A 1280 × 800 desktop viewport.
    Desktop,
    /// A 390 × 844 phone at twice the density, with a mobile layout (pages'
    /// `<meta name="viewport">` applies) and touch: screenshots are 780 × 1688.
    Phone,
}

impl Viewport {
    /// chromedriver's `deviceMetrics`: the viewport is set exactly, whatever
    /// room the headless window keeps for its (invisible) toolbars.
    fn device_metrics(self) -> serde_json::Value {
        match self {
            Self::Desktop => json!({
                "width": 1280, "height": 800, "pixelRatio": 1.0, "mobile": false, "touch": false,
            }),
            Self::Phone => json!({
                "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true, "touch": true,
            }),
        }
    }
}

/// A headless Chromium session, closed with its driver on drop.
pub struct Browser {
    client: Client,
    // Dropped after the client: it kills every process of the session.
    driver: Chromedriver,
}

impl Browser {
    /// A browser with a desktop window.
    pub async fn start() -> Self {
        Self::start_with(Viewport::Desktop).await
    }

    /// A browser showing pages on `viewport`.
    pub async fn start_with(viewport: Viewport) -> Self {
        let chromium = installed("chromium");
        let driver = Chromedriver::start(&installed("chromedriver"));
        // chromedriver listens on loopback only, over plain HTTP.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&chromium, &driver.profile, viewport))
            .connect(&format!("http://{}", driver.addr))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "chromedriver could not start Chromium ({}): {err}\n\
                     chromedriver's and Chromium's output:\n{}",
                    chromium.display(),
                    driver.log()
                )
            });
        Self { client, driver }
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("cannot open {url}: {err}"));
    }

    /// Types `value` into the form field named `name` (`<input name=…>`,
    /// `<textarea name=…>`), replacing what it held.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self.find(&format!("[name=\"{name}\"]")).await;
        field.clear().await.unwrap();
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|err| panic!("cannot type into the field {name}: {err}"));
    }

    /// Clicks the element `selector` (CSS) picks. This may return before a
    /// navigation the click starts: on the phone viewport chromedriver taps,
    /// and the tap's navigation begins after the command has answered. To
    /// send a form, use [`Browser::submit`].
    pub async fn click(&self, selector: &str) {
        self.find(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("cannot click {selector}: {err}"));
    }

    /// Clicks the button `selector` picks, for example
    /// `button[name=decision][value=allow]`, and returns once the page it was
    /// on has gone and the one the form brought back (after any redirects)
    /// has loaded.
    pub async fn submit(&self, selector: &str) {
        let page = self.find("html").await;
        self.click(selector).await;
        let deadline = Instant::now() + WAIT;
        loop {
            // chromedriver finishes a navigation in progress before it
            // answers, so once the old page is stale the new one is loaded.
            // Asked while the old page is being torn down, it may answer
            // with another error ("Node with given id does not belong to the
            // document"): ask again.
            let last = match page.tag_name().await {
                Err(err) if err.is_stale_element_reference() => return,
                Ok(_) => "the page is still there".to_owned(),
                Err(err) => err.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "clicking {selector} did not leave {} ({last}), reading:\n{}",
                self.current_url().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address the browser shows, with its query and fragment.
    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits until the browser's address starts with `prefix`, and returns
    /// it: for a redirect that a script or a second request completes.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if url.starts_with(prefix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "the browser did not reach {prefix}; it shows {url}, reading:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's text as a person would read it (the body's rendered text).
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The text of the element `selector` picks.
    pub async fn text_of(&self, selector: &str) -> String {
        self.find(selector).await.text().await.unwrap()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Writes a PNG of what the viewport shows to `path`, creating its
    /// directory if needed.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }

    /// The fantoccini client, for what the helpers above do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Everything chromedriver and Chromium printed so far.
    pub fn log(&self) -> String {
        self.driver.log()
    }

    /// The element `selector` picks, waiting for it to appear.
    async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
        {
            Ok(element) => element,
            Err(err) => panic!(
                "no element matches {selector} on {} ({err}); the page reads:\n{}",
                self.current_url().await,
                self.text().await
            ),
        }
    }
}

/// The `key=value` pairs of a URL's query, decoded.
pub fn query_params(url: &str) -> BTreeMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, rest)| rest);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    decode_pairs(query)
}

/// The `key=value` pairs of a URL's fragment, decoded: where the implicit
/// grant puts its token.
pub fn fragment_params(url: &str) -> BTreeMap<String, String> {
    decode_pairs(url.split_once('#').map_or("", |(_, fragment)| fragment))
}

fn decode_pairs(encoded: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(encoded.as_bytes())
        .into_owned()
        .collect()
}

/// What chromedriver is asked for: Debian's Chromium, headless, in our own
/// profile directory.
fn capabilities(chromium: &Path, profile: &Path, viewport: Viewport) -> Capabilities {
    let options = json!({
        "binary": chromium,
        "args": [
            "--headless=new",
            // Chromium's sandbox refuses to run as root, which CI is; the
            // pages it opens are our own.
            "--no-sandbox",
            "--disable-gpu",
            // /dev/shm is 64 MB in many containers, where renderers crash.
            "--disable-dev-shm-usage",
            // The window; the viewport inside it is set exactly by the
            // device metrics below.
            "--window-size=1280,800",
            format!("--user-data-dir={}", profile.display()),
            "--no-first-run",
            "--no-default-browser-check",
        ],
        "mobileEmulation": { "deviceMetrics": viewport.device_metrics() },
    });
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    // Milliseconds. A local page that takes longer has hung.
    capabilities.insert(
        "timeouts".into(),
        json!({ "pageLoad": 30_000, "script": 10_000, "implicit": 0 }),
    );
    capabilities
}

/// A `chromedriver` process, on the port it picked itself, killed on drop with
/// the Chromium processes it started.
struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Chromium's profile, in the directory that holds everything the
    /// session writes: nothing is left behind after the kill.
    profile: PathBuf,
    _dir: tempfile::TempDir,
}

impl Chromedriver {
    fn start(binary: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        // Chromium's temporary files (its shared memory, with
        // --disable-dev-shm-usage) and the driver's: in our directory too.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let mut child = Command::new(binary)
            .env("TMPDIR", &tmp)
            // Port 0: the driver binds a free port itself and prints it, so no
            // other process can take it between our choice and its bind.
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own, which Chromium's processes join:
            // drop kills them all, and none outlives a failed test.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", binary.display()));
        // Chromium writes to the driver's stderr: one log for both.
        let log = capture(child.stdout.take().unwrap());
        capture_into(child.stderr.take().unwrap(), Arc::clone(&log));
        // Owned before it listens, so that a panic while waiting kills it.
        let mut driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            profile,
            _dir: dir,
        };
        driver.addr = driver.wait_until_listening();
        driver
    }

    /// Reads the port from the driver's "started successfully on port N",
    /// then waits until it accepts a connection.
    fn wait_until_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let port = self
                .log()
                .lines()
                .find_map(|line| line.split("started successfully on port ").nth(1))
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok());
            if let Some(port) = port {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return addr;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "chromedriver exited with {status}; its output:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver does not answer; its output:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// The path of `program`. When it is missing, `.ci/browser.sh` installs
/// Chromium and chromedriver (once per test process); if that fails, the
/// test fails with what is missing and how to get it.
fn installed(program: &str) -> PathBuf {
    static INSTALL: OnceLock<Result<(), String>> = OnceLock::new();
    let package = match program {
        "chromedriver" => "chromium-driver",
        _ => program,
    };
    if let Some(path) = find_program(program) {
        return path;
    }
    if let Err(why) = INSTALL.get_or_init(|| run_install_script(".ci/browser.sh")) {
        panic!(
            "the browser tests need chromium and chromedriver, and {program} is not installed. \
             .ci/browser.sh could not install it:\n{why}\n\
             Install both with `sudo .ci/browser.sh` \
             (on Debian: `sudo apt-get install chromium chromium-driver`)."
        );
    }
    find_program(program).unwrap_or_else(|| {
        panic!(
            "the browser tests need {program}, which .ci/browser.sh ran without installing. \
             Install it with `sudo apt-get install {package}`."
        )
    })
}
