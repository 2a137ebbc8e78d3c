//! Hostile receivers: each one misbehaves over raw TCP on loopback in a way a well-behaved
//! HTTP library never would, and each attempt must still end within the webhook's timeout,
//! keep at most the body cap, log a clear error, and cost other tenants nothing.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hookrelay::domain::time::Timestamp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(30);
/// No hostile connection may make the server read more than this: socket buffers on both
/// ends plus the client's read buffer, far below what the receivers offer (10 GB, endless).
const READ_BOUND: u64 = 64 * 1024 * 1024;

/// What a hostile receiver saw.
#[derive(Default)]
struct Seen {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections whose behaviour ended: the server went away (or the script finished).
    ended: AtomicUsize,
    /// Bytes written to the server, all connections together.
    sent: AtomicU64,
    changed: Notify,
}

/// A receiver speaking raw HTTP/1.1: reads the request, then runs `behave` on the socket.
struct Hostile {
    base: String,
    seen: Arc<Seen>,
    _guard: DropGuard,
}

impl Hostile {
    async fn start<F, Fut>(behave: F) -> Hostile
    where
        F: Fn(TcpStream, Arc<Seen>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let behave = Arc::new(behave);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                    () = stop2.cancelled() => return,
                };
                seen2.accepted.fetch_add(1, Ordering::SeqCst);
                seen2.changed.notify_waiters();
                let (seen, stop, behave) = (seen2.clone(), stop2.clone(), behave.clone());
                tokio::spawn(async move {
                    let run = async {
                        read_request(&mut stream).await;
                        behave(stream, seen.clone()).await;
                    };
                    tokio::select! {
                        () = run => {},
                        () = stop.cancelled() => return,
                    }
                    seen.ended.fetch_add(1, Ordering::SeqCst);
                    seen.changed.notify_waiters();
                });
            }
        });
        Hostile {
            base,
            seen,
            _guard: stop.drop_guard(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn accepted(&self) -> usize {
        self.seen.accepted.load(Ordering::SeqCst)
    }

    fn ended(&self) -> usize {
        self.seen.ended.load(Ordering::SeqCst)
    }

    fn sent(&self) -> u64 {
        self.seen.sent.load(Ordering::SeqCst)
    }

    /// Waits until `what` holds; panics after `limit`.
    async fn until(&self, limit: Duration, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let changed = self.seen.changed.notified();
            if check(self) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}: not within {limit:?}");
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), changed).await;
        }
    }
}

/// Reads a request head and its `content-length` body (what hookrelay sends).
async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Writes `bytes`, counting them; `false` once the server has gone away.
async fn send(stream: &mut TcpStream, seen: &Seen, bytes: &[u8]) -> bool {
    match stream.write_all(bytes).await {
        Ok(()) => {
            seen.sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            true
        }
        Err(_) => false,
    }
}

/// Holds the connection until the server closes it (or `limit` passes, so a broken server
/// cannot hang the test).
async fn hold(stream: &mut TcpStream, limit: Duration) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    })
    .await;
}

fn hook(url: String, timeout_seconds: u64) -> Value {
    json!({
        "name": "hostile",
        "url": url,
        "events": ["*"],
        "retry_count": 0,
        "timeout_seconds": timeout_seconds,
    })
}

/// Sends one event to a fresh webhook at `url`; answers the attempt's log row.
async fn one_attempt(app: &TestApp, url: String, timeout_seconds: u64) -> Value {
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(url, timeout_seconds)).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    logs["data"][0].clone()
}

fn body_chars(log: &Value) -> usize {
    log["response_body"].as_str().unwrap().chars().count()
}

/// The response body kept in the log: the server's default, which the tests run with.
fn cap() -> usize {
    hookrelay::delivery::DeliveryConfig::default().response_body_cap
}

#[tokio::test]
async fn an_endless_body_is_read_up_to_the_cap_then_dropped() {
    let app = spawn_app!();
    let rx = Hostile::start(|mut s, seen| async move {
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
        if !send(&mut s, &seen, head).await {
            return;
        }
        let mut chunk = format!("{:x}\r\n", 16 * 1024).into_bytes();
        chunk.extend(std::iter::repeat_n(b'x', 16 * 1024));
        chunk.extend_from_slice(b"\r\n");
        // Forever, or until hookrelay stops reading (bounded so a broken server cannot fill
        // the disk of the test machine: 4 GiB).
        for _ in 0..(256 * 1024) {
            if !send(&mut s, &seen, &chunk).await {
                return;
            }
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/endless"), 2).await;
    // Success, cut at the cap, and not by the deadline: reading stopped at the cap.
    assert_eq!(log["response_status"], 200, "{log}");
    assert_eq!(log["is_success"], true, "{log}");
    assert!(log["error_message"].is_null(), "{log}");
    assert_eq!(log["response_body_truncated"], true);
    assert_eq!(log["response_body"], "x".repeat(cap()));
    // The connection was dropped: the receiver's writes failed, far short of "forever".
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
    assert!(rx.sent() < READ_BOUND, "{} bytes were read", rx.sent());
}

#[tokio::test]
async fn a_ten_gigabyte_body_costs_no_more_than_the_cap() {
    let app = spawn_app!();
    let rx = Hostile::start(|mut s, seen| async move {
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 10737418240\r\n\r\n";
        if !send(&mut s, &seen, head).await {
            return;
        }
        let block = vec![b'y'; 64 * 1024];
        for _ in 0..(10u64 * 1024 * 1024 * 1024 / block.len() as u64) {
            if !send(&mut s, &seen, &block).await {
                return;
            }
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/huge"), 2).await;
    assert_eq!(log["response_status"], 200, "{log}");
    assert!(log["error_message"].is_null(), "{log}");
    assert_eq!(log["response_body_truncated"], true);
    assert_eq!(log["response_body"], "y".repeat(cap()));
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
    assert!(rx.sent() < READ_BOUND, "{} bytes were read", rx.sent());
}

/// Writes `bytes` one byte a second; the deadline must cut it short.
async fn trickle(s: &mut TcpStream, seen: &Seen, bytes: &[u8]) {
    for b in bytes {
        if !send(s, seen, &[*b]).await {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_body_trickling_at_one_byte_a_second_ends_at_the_timeout() {
    let app = spawn_app!();
    let rx = Hostile::start(|mut s, seen| async move {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 600\r\n\r\n";
        if send(&mut s, &seen, head).await {
            trickle(&mut s, &seen, &[b'z'; 600]).await;
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/trickle"), 1).await;
    assert_eq!(log["error_message"], "timed out after 1 s", "{log}");
    assert_eq!(log["is_success"], false);
    assert!(log["response_status"].is_null(), "{log}");
    let took = log["response_time_ms"].as_i64().unwrap();
    assert!(took >= 1000, "{took} ms");
    // hookrelay hung up: the receiver got to send a few bytes of its 600.
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
    assert!(rx.sent() < 200, "{} bytes were sent", rx.sent());
}

#[tokio::test]
async fn headers_trickling_at_one_byte_a_second_end_at_the_timeout() {
    let app = spawn_app!();
    let rx = Hostile::start(|mut s, seen| async move {
        let head = b"HTTP/1.1 200 OK\r\nx-slow: ";
        if send(&mut s, &seen, head).await {
            trickle(&mut s, &seen, &[b'a'; 600]).await;
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/slow-headers"), 1).await;
    assert_eq!(log["error_message"], "timed out after 1 s", "{log}");
    assert!(log["response_status"].is_null(), "{log}");
    assert!(log["response_time_ms"].as_i64().unwrap() >= 1000);
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
    assert!(rx.sent() < 200, "{} bytes were sent", rx.sent());
}

#[tokio::test]
async fn a_megabyte_of_headers_is_refused_not_buffered() {
    let app = spawn_app!();
    let rx = Hostile::start(|mut s, seen| async move {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        let value = "v".repeat(1000);
        for i in 0..1024 {
            head.extend_from_slice(format!("x-filler-{i}: {value}\r\n").as_bytes());
        }
        head.extend_from_slice(b"content-length: 2\r\n\r\nok");
        if send(&mut s, &seen, &head).await {
            hold(&mut s, WAIT).await;
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/fat-headers"), 2).await;
    assert_eq!(log["is_success"], false, "{log}");
    assert!(log["response_status"].is_null(), "{log}");
    let error = log["error_message"].as_str().unwrap();
    assert_eq!(error, "response headers too large", "{log}");
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
}

#[tokio::test]
async fn a_gzip_bomb_is_stored_compressed_and_capped() {
    // 256 MiB of zeros, gzip-compressed to a few hundred KiB.
    let inflated: usize = 256 * 1024 * 1024;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..inflated / zeros.len() {
        encoder.write_all(&zeros).unwrap();
    }
    let bomb = Arc::new(encoder.finish().unwrap());
    assert!(
        bomb.len() < inflated / 100,
        "a real bomb: {} bytes",
        bomb.len()
    );

    let app = spawn_app!();
    let payload = bomb.clone();
    let rx = Hostile::start(move |mut s, seen| {
        let payload = payload.clone();
        async move {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                payload.len()
            );
            if send(&mut s, &seen, head.as_bytes()).await {
                send(&mut s, &seen, &payload).await;
                hold(&mut s, WAIT).await;
            }
        }
    })
    .await;
    let log = one_attempt(&app, rx.url("/bomb"), 2).await;
    assert_eq!(log["response_status"], 200, "{log}");
    assert_eq!(log["response_body_truncated"], true);
    // Never inflated: what is stored is the start of the compressed stream (the gzip magic
    // 1f 8b, the 0x8b shown as U+FFFD), at most the cap.
    let body = log["response_body"].as_str().unwrap();
    assert!(body.starts_with("\u{1f}\u{fffd}\u{8}"), "{:?}", &body[..8]);
    assert!(body_chars(&log) <= cap());
    rx.until(WAIT, "connection dropped", |r| r.ended() == 1)
        .await;
    assert!(rx.sent() <= bomb.len() as u64 + 1024);
}

/// The delay hookrelay scheduled after an answer of 503 with `Retry-After: value`.
#[tokio::test]
async fn retry_after_extremes_are_clamped_or_ignored() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    // Long enough to read the schedule before any retry happens.
    config.delivery.retry.base = Duration::from_secs(30);
    config.delivery.retry.max_delay = Duration::from_secs(3600);
    let app = TestApp::spawn_with(db, config).await;
    let rx = Receiver::start().await;
    let decade = SystemTime::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    let yesterday = SystemTime::now() - Duration::from_secs(24 * 3600);
    let cases: Vec<(&str, String, u64)> = vec![
        ("honoured", "120".into(), 120),
        ("ten-years-seconds", "315360000".into(), 3600),
        ("ten-years-date", httpdate::fmt_http_date(decade), 3600),
        ("past-date", httpdate::fmt_http_date(yesterday), 30),
        ("garbage", "soon, maybe".into(), 30),
        ("negative", "-5".into(), 30),
        ("overflow", "99999999999999999999999".into(), 30),
    ];
    let t = app.tenant("Acme").await;
    let mut hooks = Vec::new();
    for (name, value, expected) in &cases {
        let value = value.clone();
        rx.script(&format!("/{name}"), move |_| Reply {
            headers: vec![("retry-after", value.clone())],
            ..Reply::status(503)
        });
        let mut body = hook(rx.url(&format!("/{name}")), 5);
        body["retry_count"] = json!(1);
        let w = app.webhook(&t, body).await;
        hooks.push((w["id"].as_str().unwrap().to_owned(), *name, *expected));
    }
    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let event = app
        .eventually(&t, &path, WAIT, |e| {
            let deliveries = e["deliveries"].as_array().unwrap();
            deliveries.len() == cases.len()
                && deliveries
                    .iter()
                    .all(|d| d["attempts"] == 1 && !d["next_attempt_at"].is_null())
        })
        .await;
    let at = |v: &Value| {
        Timestamp::parse_rfc3339(v.as_str().unwrap())
            .unwrap()
            .millis()
    };
    for (webhook_id, name, expected) in hooks {
        let d = event["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["webhook_id"] == webhook_id.as_str())
            .unwrap();
        assert_eq!(d["last_status"], 503, "{name}: {d}");
        let scheduled_ms = at(&d["next_attempt_at"]) - at(&d["updated_at"]);
        let expected_ms = expected as i64 * 1000;
        assert!(
            (scheduled_ms - expected_ms).abs() <= 2000,
            "{name}: retry in {scheduled_ms} ms, expected {expected_ms} ms"
        );
    }
}

#[tokio::test]
async fn a_stalled_receiver_does_not_slow_other_tenants() {
    let app = spawn_app!();
    // Tenant A's receiver accepts every connection and never answers.
    let stalled = Hostile::start(|mut s, _seen| async move {
        hold(&mut s, Duration::from_secs(120)).await;
    })
    .await;
    let healthy = Receiver::start().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    // The longest timeout a webhook may have: A's attempts outlive everything below.
    let wa = app.webhook(&a, hook(stalled.url("/stall"), 60)).await;
    let wb = app.webhook(&b, hook(healthy.url("/b"), 5)).await;
    for i in 0..24 {
        app.event(&a, json!({"type": "message.new", "data": {"i": i}}))
            .await;
    }
    // A's lane is saturated: as many attempts in flight as one webhook may have (16).
    stalled
        .until(WAIT, "A's attempts in flight", |r| r.accepted() >= 16)
        .await;

    const N: usize = 50;
    let started = Instant::now();
    for i in 0..N {
        app.event(&b, json!({"type": "message.new", "data": {"i": i}}))
            .await;
    }
    let hits = healthy.wait_for("/b", N, WAIT).await;
    let slowest = hits.iter().map(|h| h.at - started).max().unwrap();
    eprintln!("tenant B: {N} deliveries done {slowest:?} after the first event, A stalled");

    // All of B delivered while every one of A's attempts is still stalled: none has ended,
    // none is logged, and A's lane never grew past its own limit.
    assert_eq!(stalled.ended(), 0);
    assert_eq!(stalled.accepted(), 16);
    let logs_a = app
        .get(
            &a,
            &format!("/api/v1/webhooks/{}/logs", wa["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(logs_a["data"], json!([]));
    let logs_b = app
        .eventually(
            &b,
            &format!(
                "/api/v1/webhooks/{}/logs?limit=200",
                wb["id"].as_str().unwrap()
            ),
            WAIT,
            |l| l["data"].as_array().unwrap().len() == N,
        )
        .await;
    assert!(
        logs_b["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["is_success"] == true)
    );
}
