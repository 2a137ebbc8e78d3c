//! A real HTTP receiver on loopback that records every delivery and answers as told, or holds
//! requests open until released, counting the connections it holds.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// How to answer the n-th request (0-based) on a path.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
            body: "ok".into(),
        }
    }
}

type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    hits: Mutex<Vec<Hit>>,
    scripts: Mutex<HashMap<String, Script>>,
    arrived: Notify,
    /// Requests being answered now, by path.
    open: Mutex<HashMap<String, usize>>,
    /// Paths whose requests wait, unanswered, until released.
    held: Mutex<HashSet<String>>,
    released: Notify,
}

/// Counts a request open until its answer is sent, or until the client gives up on it.
struct Open<'a>(&'a State, String);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.0.open.lock().unwrap().get_mut(&self.1) {
            *n -= 1;
        }
    }
}

pub struct Receiver {
    pub base: String,
    state: Arc<State>,
    _guard: DropGuard,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(State::default());
        let shutdown = CancellationToken::new();
        let handler_state = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = handler_state.clone();
            async move { receive(state, uri, headers, body).await }
        });
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .ok();
        });
        Receiver {
            base,
            state,
            _guard: shutdown.drop_guard(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answers on `path` according to `script(n)` for its n-th request (default: 200).
    pub fn script(&self, path: &str, script: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(script));
    }

    /// Requests on `path` wait, unanswered, until [`Self::release`]: attempts stay in flight.
    #[allow(dead_code)] // used by the PostgreSQL-only cluster tests
    pub fn hold(&self, path: &str) {
        self.state.held.lock().unwrap().insert(path.to_owned());
    }

    /// Answers the requests held on `path`, and from now on answers at once again.
    #[allow(dead_code)] // used by the PostgreSQL-only cluster tests
    pub fn release(&self, path: &str) {
        self.state.held.lock().unwrap().remove(path);
        self.state.released.notify_waiters();
    }

    /// Requests on `path` open now (arrived, not yet answered).
    #[allow(dead_code)] // used by the PostgreSQL-only cluster tests
    pub fn open(&self, path: &str) -> usize {
        self.state
            .open
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.state
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    pub fn all_hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Waits until `path` has seen at least `n` requests; panics after `limit`.
    pub async fn wait_for(&self, path: &str, n: usize, limit: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.state.arrived.notified();
            let hits = self.hits(path);
            if hits.len() >= n {
                return hits;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{path}: {} of {n} requests arrived within {limit:?}",
                hits.len()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

async fn receive(state: Arc<State>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let hit = Hit {
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
        at: Instant::now(),
    };
    let n = {
        let mut hits = state.hits.lock().unwrap();
        let n = hits.iter().filter(|h| h.path == path).count();
        hits.push(hit);
        // Counted under the same lock: a request is never seen arrived but not open.
        *state.open.lock().unwrap().entry(path.clone()).or_default() += 1;
        n
    };
    let _open = Open(&state, path.clone());
    state.arrived.notify_waiters();
    loop {
        let released = state.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if !state.held.lock().unwrap().contains(&path) {
            break;
        }
        released.await;
    }
    let script = state.scripts.lock().unwrap().get(&path).cloned();
    let reply = script.map_or_else(|| Reply::status(200), |s| s(n));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
