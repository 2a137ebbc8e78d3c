//! Connection-level abuse: thousands of connections that send nothing or trickle their request
//! head, from many addresses, against a server with a low connection cap. Other clients'
//! health checks and authenticated ingest keep answering while the cap is reached, the server
//! never holds more than its cap, and every such connection is closed at the head deadline.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::helpers::*;

/// Attack connections opened in all, when the open-file limit allows.
const ATTACK: usize = 3000;
/// Of which, opened before the good client's rounds begin.
const FLOOD: usize = 2000;
const ROUNDS: usize = 5;
const CAP: usize = 200;
/// Long enough that the cap, not the deadline, is what brings the flood down to `CAP`.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Source addresses the attack comes from (127.0.0.2 …), so the per-address cap alone does
/// not stop it: the overall cap has to.
const ATTACK_ADDRESSES: u8 = 30;

/// Connections the test process can afford to open: other tests run beside this one.
fn affordable() -> usize {
    let limit = hookrelay::listener::raise_nofile_limit().unwrap_or(4096);
    let room = usize::try_from(limit.saturating_sub(1500)).unwrap_or(usize::MAX);
    ATTACK.min(room)
}

/// A connection from `from` to `server`.
async fn connect(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(server))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The attacker's connections, each watched by a task that counts it closed once the server
/// closes it (end of stream or reset). Trickling ones send a byte of an endless head now
/// and then.
struct Attack {
    server: SocketAddr,
    /// When the first attack connection was opened: no head deadline fires before
    /// `first_at + HEAD_DEADLINE`.
    first_at: Option<Instant>,
    opened: usize,
    closed: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<()>,
}

impl Attack {
    async fn open(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.opened;
            self.opened += 1;
            self.first_at.get_or_insert_with(Instant::now);
            let from = IpAddr::from([127, 0, 0, 2 + (i % usize::from(ATTACK_ADDRESSES)) as u8]);
            let closed = self.closed.clone();
            let Ok(mut stream) = connect(from, self.server).await else {
                // A connection the kernel could not even queue is one the server never holds.
                closed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let trickle = i % 2 == 1;
            self.tasks.spawn(async move {
                let mut buf = [0u8; 1024];
                let head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ";
                let mut sent = 0usize;
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            // A refusal's 503; the close follows.
                            Ok(_) => {}
                        },
                        _ = tick.tick(), if trickle => {
                            let byte = head.get(sent).copied().unwrap_or(b'a');
                            sent += 1;
                            if stream.write_all(&[byte]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                closed.fetch_add(1, Ordering::Relaxed);
            });
        }
    }

    fn open_now(&self) -> usize {
        self.opened - self.closed.load(Ordering::Relaxed)
    }

    /// Waits until `check` holds of the number of connections still open; panics at `deadline`.
    async fn until(&self, what: &str, deadline: Instant, check: impl Fn(usize) -> bool) {
        while !check(self.open_now()) {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {} attack connections still open",
                self.open_now(),
                self.opened
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_connections_cannot_take_the_api_down() {
    require_backend!();
    let total = affordable();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.connections.max_connections = CAP;
    config.connections.max_connections_per_ip = 100;
    config.connections.header_read_timeout = HEAD_DEADLINE;
    let app = TestApp::spawn_with(db, config).await;
    let tenant = app.tenant("Acme").await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // The good client opens a new connection for every request, so each one has to get in
    // past the cap.
    let good = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let mut attack = Attack {
        server,
        first_at: None,
        opened: 0,
        closed: Arc::new(AtomicUsize::new(0)),
        tasks: tokio::task::JoinSet::new(),
    };
    let flood = FLOOD.min(total);
    let per_round = (total - flood) / ROUNDS;
    attack.open(flood).await;
    // Never more than the cap held: the rest are shed or refused. Reached before any head
    // deadline could have fired, so it is the cap at work.
    let first_deadline = attack.first_at.expect("the flood opened connections") + HEAD_DEADLINE;
    attack
        .until(
            "the cap, before any head deadline",
            first_deadline,
            |open| open <= CAP,
        )
        .await;
    for round in 0..ROUNDS {
        // Fresh attack connections first: the server is at its cap when the good client comes.
        attack.open(per_round).await;
        let r = good.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "round {round}: /readyz");
        let r = good
            .post(app.url("/api/v1/events"))
            .bearer_auth(&tenant.key)
            .json(&json!({"type": "message.new", "data": {"round": round}}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "round {round}: POST /events"
        );
    }

    // The head deadline closes every one of them, silent or trickling.
    attack
        .until(
            "the head deadline",
            Instant::now() + Duration::from_secs(60),
            |open| open == 0,
        )
        .await;
    // And the server is whole afterwards.
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    attack.tasks.abort_all();
}

#[tokio::test]
async fn past_the_address_cap_a_connection_is_refused_at_once_with_a_503_problem() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.connections.max_connections_per_ip = 5;
    let app = TestApp::spawn_with(db, config).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let from = IpAddr::from([127, 0, 0, 77]);
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect(from, server).await.unwrap());
    }
    // Held open by the server: an HTTP request on one of them is answered.
    let held_ok = {
        let stream = &mut held[0];
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(held_ok.starts_with("HTTP/1.1 200"), "{held_ok}");
    let mut sixth = connect(from, server).await.unwrap();
    let mut answer = Vec::new();
    // The answer, then the close: nothing is waited for.
    let read = tokio::time::timeout(Duration::from_secs(20), sixth.read_to_end(&mut answer))
        .await
        .expect("closed at once, not held");
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "{read:?}");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(text.contains("/problems/too-many-connections"), "{text}");
    // Another address is not affected.
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_kept_alive_connection_outlives_the_head_deadline_until_the_idle_timeout() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.connections.header_read_timeout = Duration::from_millis(300);
    config.connections.idle_timeout = Duration::from_secs(30);
    let app = TestApp::spawn_with(db, config).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut buf = vec![0u8; 1024];
    for _ in 0..2 {
        stream.write_all(request).await.unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // Idle for longer than a head may take: a kept-alive connection is not cut for it.
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    // A further head begun and left unfinished is cut at the head deadline.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("cut at the head deadline");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_at_the_idle_timeout() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.connections.idle_timeout = Duration::from_millis(300);
    let app = TestApp::spawn_with(db, config).await;
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Kept alive after its answer, then closed once idle past the timeout, nothing sent.
    let closed = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("closed at the idle timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}
