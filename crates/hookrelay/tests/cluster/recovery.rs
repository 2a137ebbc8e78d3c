//! A recovery outlives the node running it: killed mid-way, another node takes it over once
//! its lease runs out, and every failed delivery is queued again exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::super::it::crash::Node;
use super::super::it::helpers::{TestDb, backend_available};
use super::super::it::receiver::{Receiver, Reply};
use super::tenant_key;

async fn until(
    node: &Node,
    path: &str,
    key: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = node.call(Method::GET, path, key, None).await;
        if ok(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {got}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_a_recovery_leaves_it_to_another() {
    if !backend_available() {
        return;
    }
    const N: usize = 200;
    let rx = Receiver::start().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    rx.script("/r", move |_| {
        Reply::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            500
        })
    });
    let db = TestDb::create().await;
    let a = Node::start(&db).await;
    let key = tenant_key(&a, "recovery").await;
    let hook = a
        .call(
            Method::POST,
            "/api/v1/webhooks",
            &key,
            Some(json!({"name": "r", "url": rx.url("/r"), "events": ["*"], "retry_count": 0})),
        )
        .await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let since = hookrelay::domain::time::Timestamp::now()
        .plus_millis(-1000)
        .to_rfc3339();
    let events: Vec<Value> = (0..N)
        .map(|i| json!({"type": "message.new", "data": {"n": i}}))
        .collect();
    a.call(
        Method::POST,
        "/api/v1/events/batch",
        &key,
        Some(json!({"events": events})),
    )
    .await;
    until(&a, &path, &key, "every delivery failing", |w| {
        w["failed_deliveries"] == N as i64
    })
    .await;

    // Paced by the webhook's own rate: 20 a second, so the recovery takes about 10 s.
    a.call(
        Method::PATCH,
        &path,
        &key,
        Some(json!({"rate_limit_per_second": 20})),
    )
    .await;
    fixed.store(true, Ordering::SeqCst);
    let recovery = a
        .call(
            Method::POST,
            &format!("{path}/recover"),
            &key,
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(recovery["pace"], 20, "{recovery}");
    let progress = format!("{path}/recoveries/{}", recovery["id"].as_str().unwrap());
    until(&a, &progress, &key, "a quarter re-queued", |r| {
        r["requeued"].as_i64().unwrap_or(0) >= (N / 4) as i64
    })
    .await;
    let b = Node::start(&db).await;
    a.signal("-KILL");
    drop(a);
    let at_kill = rx.hits("/r").len();
    assert!(at_kill < 2 * N, "the recovery ended before the kill");

    let done = until(&b, &progress, &key, "the recovery completing on B", |r| {
        r["state"] == "completed"
    })
    .await;
    assert_eq!(done["requeued"], N as i64, "{done}");
    assert_eq!(done["progress_percent"], 100, "{done}");
    let w = until(&b, &path, &key, "every delivery succeeding", |w| {
        w["successful_deliveries"] == N as i64
    })
    .await;
    assert_eq!(w["total_deliveries"], N as i64, "{w}");
    assert_eq!(w["failed_deliveries"], 0, "{w}");
    // Each event failed once and then arrived; only an attempt in flight at the kill may
    // have been made twice.
    let hits = rx.wait_for("/r", 2 * N, Duration::from_secs(60)).await;
    let mut times: HashMap<String, usize> = HashMap::new();
    for h in &hits {
        *times.entry(h.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(times.len(), N);
    let twice_more = times.values().filter(|n| **n > 2).count();
    assert!(
        twice_more <= 4,
        "{twice_more} deliveries sent again more than once"
    );
    assert!(times.values().all(|n| *n >= 2));
}
