//! The real binary, killed: `kill -9` mid-backlog loses no accepted event; SIGTERM finishes
//! what is in flight, exits 0, and the next start resumes the rest.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

/// A hookrelay process: the real binary, configured by environment as an operator would.
pub(crate) struct Node {
    pub child: Child,
    pub base: String,
    client: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    pub async fn start(db: &TestDb) -> Node {
        Self::start_on(&db.url).await
    }

    /// A node on the database at `url` (one of the test's own making).
    pub async fn start_on(url: &str) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .arg("serve")
            .env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKRELAY_DATABASE_URL", url)
            .env("HOOKRELAY_ADMIN_KEY", ADMIN_KEY)
            // Thousands of events from one address: the API limits are not under test here.
            .env("HOOKRELAY_RATE_LIMIT_PER_IP", "0")
            .env("HOOKRELAY_RATE_LIMIT_PER_KEY", "0")
            .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", LOOPBACK)
            .env("HOOKRELAY_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
            .env("HOOKRELAY_PER_WEBHOOK_CONCURRENCY", "4")
            .env("HOOKRELAY_RETRY_BASE", "100ms")
            .env("HOOKRELAY_RETRY_JITTER", "0")
            .env("HOOKRELAY_POLL_INTERVAL", "200ms")
            .env("HOOKRELAY_SHUTDOWN_GRACE", "10s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..400 {
            if let Ok(r) = node
                .client
                .get(format!("{}/readyz", node.base))
                .send()
                .await
                && r.status() == StatusCode::OK
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("node never became ready");
    }

    /// A request that must succeed; its JSON answer.
    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.send(method, path, key, body).await;
        assert!(status.is_success(), "{path}: {status}");
        answer
    }

    /// A request; its status and JSON answer (`Null` when there is none).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A tenant, a webhook at `url`, and 1,000 accepted events; returns (tenant key, webhook id).
async fn backlog(node: &Node, url: String) -> (String, String) {
    let tenant = node
        .call(
            Method::POST,
            "/api/v1/tenants",
            ADMIN_KEY,
            Some(json!({"name": "crash"})),
        )
        .await;
    let path = format!("/api/v1/tenants/{}/keys", tenant["id"].as_str().unwrap());
    let key = node
        .call(Method::POST, &path, ADMIN_KEY, Some(json!({})))
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let hook = node
        .call(
            Method::POST,
            "/api/v1/webhooks",
            &key,
            Some(json!({"name": "slow", "url": url, "events": ["*"]})),
        )
        .await;
    for batch in 0..2 {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"type": "message.new", "data": {"n": batch * 500 + i}}))
            .collect();
        let answer = node
            .call(
                Method::POST,
                "/api/v1/events/batch",
                &key,
                Some(json!({"events": events})),
            )
            .await;
        assert_eq!(answer["data"].as_array().unwrap().len(), 500);
    }
    (key, hook["id"].as_str().unwrap().to_owned())
}

fn distinct_ids(rx: &Receiver) -> HashSet<String> {
    rx.all_hits()
        .iter()
        .map(|h| h.header("webhook-id").to_owned())
        .collect()
}

/// Waits until the webhook's counters cover all 1,000 deliveries, then checks they equal
/// what the receiver saw.
async fn settle(node: &Node, key: &str, webhook_id: &str, rx: &Receiver) -> Value {
    rx.wait_for("/slow", 1000, Duration::from_secs(120)).await;
    let path = format!("/api/v1/webhooks/{webhook_id}");
    for _ in 0..1200 {
        let hook = node.call(Method::GET, &path, key, None).await;
        if hook["total_deliveries"] == 1000 {
            let seen = distinct_ids(rx);
            assert_eq!(
                seen.len(),
                1000,
                "every accepted event reached the receiver"
            );
            assert_eq!(
                hook["successful_deliveries"], 1000,
                "counters equal what the receiver saw"
            );
            assert_eq!(hook["failed_deliveries"], 0);
            return hook;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("counters never reached 1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backlog_loses_nothing() {
    let rx = Receiver::start().await;
    rx.script("/slow", |_| Reply {
        delay: Duration::from_millis(20),
        ..Reply::status(200)
    });
    require_backend!();
    let db = TestDb::create().await;
    let node = Node::start(&db).await;
    let (key, webhook_id) = backlog(&node, rx.url("/slow")).await;
    rx.wait_for("/slow", 150, Duration::from_secs(60)).await;
    node.signal("-KILL");
    drop(node);
    let before_restart = distinct_ids(&rx).len();
    assert!(
        before_restart < 1000,
        "the kill came mid-way ({before_restart} delivered)"
    );
    // What the dead process had recorded as delivered.
    let recorded: HashSet<String> = db
        .strings("SELECT event_id FROM deliveries WHERE state = 'succeeded'")
        .await
        .into_iter()
        .collect();

    let node = Node::start(&db).await;
    settle(&node, &key, &webhook_id, &rx).await;
    // Duplicates only for attempts the dead process made but had not recorded.
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for hit in rx.all_hits() {
        let id = hit.header("webhook-id").to_owned();
        if !seen.insert(id.clone()) {
            duplicates.push(id);
        }
    }
    for id in &duplicates {
        assert!(
            !recorded.contains(id),
            "{id} was recorded as delivered, yet sent again"
        );
    }
    assert!(duplicates.len() <= 64, "{} duplicates", duplicates.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_the_next_start_resumes() {
    let rx = Receiver::start().await;
    rx.script("/slow", |_| Reply {
        delay: Duration::from_millis(20),
        ..Reply::status(200)
    });
    require_backend!();
    let db = TestDb::create().await;
    let mut node = Node::start(&db).await;
    let (key, webhook_id) = backlog(&node, rx.url("/slow")).await;
    rx.wait_for("/slow", 150, Duration::from_secs(60)).await;
    node.signal("-TERM");
    let status = node.child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let before_restart = distinct_ids(&rx).len();
    assert!(
        before_restart < 1000,
        "stopped mid-way ({before_restart} delivered)"
    );
    drop(node);

    let node = Node::start(&db).await;
    settle(&node, &key, &webhook_id, &rx).await;
    assert_eq!(
        rx.all_hits().len(),
        1000,
        "a graceful stop records every attempt it made: no duplicates"
    );
}
