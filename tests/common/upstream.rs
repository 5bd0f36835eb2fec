//! An echo upstream: the API behind a proxy. It answers every request with JSON
//! of the method, the URI, every header and the body exactly as they arrived,
//! so that a test sees what the proxy let through.

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Request, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// A running echo upstream on a free loopback port, stopped on drop.
pub struct Upstream {
    pub addr: SocketAddr,
    served: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Starts it on a runtime of its own, so that it serves whatever runtime
    /// (or none) the test runs on.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&served);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(echo).with_state(counter);
                // On stop, the runtime goes and takes open connections with it:
                // a proxy may keep idle ones to its upstream.
                tokio::select! {
                    served = axum::serve(listener, app).into_future() => served.unwrap(),
                    _ = stopped => {}
                }
            });
        });
        Self {
            addr,
            served,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// How many requests reached it so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn echo(State(served): State<Arc<AtomicUsize>>, request: Request) -> Json<Value> {
    served.fetch_add(1, Ordering::SeqCst);
    let (request, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Json(json!({
        "method": request.method.as_str(),
        "uri": request.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }))
}

/// What reached the upstream, read back from its answer.
#[derive(Debug, Deserialize)]
pub struct Echoed {
    pub method: String,
    pub uri: String,
    /// Every header in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Echoed {
    /// Every value the upstream received under `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The one value of `name`, or None when the header did not arrive; a
    /// header that arrived twice fails the test.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(
            values.len() <= 1,
            "{name} reached the upstream {} times: {values:?}",
            values.len()
        );
        values.first().copied()
    }
}
