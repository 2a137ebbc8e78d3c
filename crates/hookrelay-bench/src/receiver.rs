//! The fast receiver: an axum server on loopback that answers every delivery with 204 at once
//! and remembers when each one arrived.
//!
//! Webhook number `i` points at `/hook/{i}`, so a delivery is identified by its path and its
//! `webhook-id` header (the event id). The receiver keeps, per delivery, the `Instant` of its
//! first arrival; a second arrival of the same delivery is counted as a duplicate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What arrived so far.
#[derive(Default)]
struct Log {
    /// Per webhook index: event id → first arrival.
    first_arrival: Vec<HashMap<String, Instant>>,
    /// Distinct (webhook, event) pairs seen.
    unique: u64,
    /// When the latest distinct delivery arrived.
    last_unique_at: Option<Instant>,
    /// Size of the last delivered body, in bytes.
    body_bytes: usize,
}

struct Shared {
    log: Mutex<Log>,
    /// Every request, duplicates and strays included.
    total: AtomicU64,
    /// Requests without a usable `webhook-id` header or `/hook/{i}` path.
    malformed: AtomicU64,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A poisoned lock only means a handler panicked mid-update of plain counters.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running receiver; stop it with [`Receiver::stop`].
pub struct Receiver {
    base: String,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

/// Counts at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub total: u64,
    pub unique: u64,
    pub malformed: u64,
    pub last_unique_at: Option<Instant>,
    pub body_bytes: usize,
}

impl Counts {
    pub fn duplicates(&self) -> u64 {
        self.total
            .saturating_sub(self.unique)
            .saturating_sub(self.malformed)
    }
}

impl Receiver {
    /// Starts a receiver for `webhooks` webhooks on 127.0.0.1, on a free port.
    pub async fn start(webhooks: usize) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            log: Mutex::new(Log {
                first_arrival: vec![HashMap::new(); webhooks],
                ..Log::default()
            }),
            total: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Ok(Receiver {
            base,
            shared,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL webhook number `index` should point at.
    pub fn url(&self, index: usize) -> String {
        format!("{}/hook/{index}", self.base)
    }

    pub fn counts(&self) -> Counts {
        let log = self.shared.log();
        Counts {
            total: self.shared.total.load(Ordering::Relaxed),
            unique: log.unique,
            malformed: self.shared.malformed.load(Ordering::Relaxed),
            last_unique_at: log.last_unique_at,
            body_bytes: log.body_bytes,
        }
    }

    /// Waits until `expected` distinct deliveries have arrived, or `limit` has passed.
    /// Returns the counts either way; the caller compares `unique` with what it expected.
    pub async fn wait_for(&self, expected: u64, limit: Duration) -> Counts {
        let deadline = Instant::now() + limit;
        loop {
            let counts = self.counts();
            if counts.unique >= expected || Instant::now() >= deadline {
                return counts;
            }
            // The finishing time is the arrival stamp, not the moment this loop notices it, so
            // a coarse poll costs no precision.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// First arrival of `event_id` at webhook `index`.
    pub fn arrival(&self, index: usize, event_id: &str) -> Option<Instant> {
        self.shared
            .log()
            .first_arrival
            .get(index)
            .and_then(|m| m.get(event_id).copied())
    }

    /// Every first arrival at webhook `index` so far: event id and when.
    pub fn arrivals(&self, index: usize) -> Vec<(String, Instant)> {
        self.shared
            .log()
            .first_arrival
            .get(index)
            .map(|m| m.iter().map(|(id, at)| (id.clone(), *at)).collect())
            .unwrap_or_default()
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(joined) => Ok(joined??),
            Err(_) => anyhow::bail!("the receiver did not stop within 10 s"),
        }
    }
}

/// Every request: stamp it, remember it, answer 204.
async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    shared.total.fetch_add(1, Ordering::Relaxed);
    let index = uri
        .path()
        .strip_prefix("/hook/")
        .and_then(|i| i.parse::<usize>().ok());
    let event_id = headers.get("webhook-id").and_then(|v| v.to_str().ok());
    let (Some(index), Some(event_id)) = (index, event_id) else {
        shared.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT;
    };
    let mut log = shared.log();
    let log = &mut *log;
    let Some(arrivals) = log.first_arrival.get_mut(index) else {
        shared.malformed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::NO_CONTENT;
    };
    if !arrivals.contains_key(event_id) {
        arrivals.insert(event_id.to_owned(), at);
        log.unique += 1;
        log.last_unique_at = Some(log.last_unique_at.map_or(at, |last| last.max(at)));
    }
    log.body_bytes = body.len();
    StatusCode::NO_CONTENT
}
