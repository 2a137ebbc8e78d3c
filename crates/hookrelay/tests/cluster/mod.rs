//! PostgreSQL only: several nodes on one database, the database going away, and the
//! database connections themselves.

mod connections;

mod changes;

mod failover;

mod recovery;

mod registry;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::it::crash::Node;
use super::it::helpers::{ADMIN_KEY, TestApp, TestDb, backend_available};
use super::it::receiver::{Receiver, Reply};

/// Deliveries seen, per (path, webhook-id).
fn seen(rx: &Receiver) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for hit in rx.all_hits() {
        *seen
            .entry((hit.path.clone(), hit.header("webhook-id").to_owned()))
            .or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_issued_by_one_node_pages_on_another() {
    if !backend_available() {
        return;
    }
    let db = TestDb::create().await;
    let nodes = [Node::start(&db).await, Node::start(&db).await];
    let key = tenant_key(&nodes[0], "cursors").await;
    for n in 0..3 {
        let body =
            json!({"name": format!("w{n}"), "url": "https://example.com/in", "events": ["*"]});
        nodes[0]
            .call(Method::POST, "/api/v1/webhooks", &key, Some(body))
            .await;
    }
    // The cursor key comes from the shared operator key, so the next node verifies it.
    let first = nodes[0]
        .call(Method::GET, "/api/v1/webhooks?limit=1", &key, None)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = format!("/api/v1/webhooks?limit=1&cursor={cursor}");
    let on_0 = nodes[0].call(Method::GET, &next, &key, None).await;
    let on_1 = nodes[1].call(Method::GET, &next, &key, None).await;
    assert_eq!(on_0, on_1);
    assert_ne!(on_1["data"][0]["id"], first["data"][0]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_survive_a_kill_9() {
    if !backend_available() {
        return;
    }
    let rx = Receiver::start().await;
    for path in ["/a", "/b"] {
        rx.script(path, |_| Reply {
            delay: Duration::from_millis(5),
            ..Reply::status(200)
        });
    }
    let db = TestDb::create().await;
    let nodes = vec![
        Node::start(&db).await,
        Node::start(&db).await,
        Node::start(&db).await,
    ];

    let key = tenant_key(&nodes[0], "cluster").await;
    let mut hooks = Vec::new();
    for p in ["/a", "/b"] {
        let body = json!({"name": p, "url": rx.url(p), "events": ["*"]});
        // Created on different nodes: they share one database.
        let node = &nodes[hooks.len() + 1];
        hooks.push(
            node.call(Method::POST, "/api/v1/webhooks", &key, Some(body))
                .await,
        );
    }

    // 5,000 events, 2 webhooks each, posted to the three nodes in turn.
    for batch in 0..10 {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"type": "message.new", "data": {"n": batch * 500 + i}}))
            .collect();
        let node = &nodes[batch % 3];
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
    rx.wait_for("/a", 1500, Duration::from_secs(120)).await;
    let mut nodes = nodes;
    let victim = nodes.remove(1);
    victim.signal("-KILL");
    drop(victim);
    // Deliveries leased and unfinished at the kill: the only ones that may arrive twice.
    let in_flight: HashSet<String> = db
        .strings("SELECT webhook_id || ' ' || event_id FROM deliveries WHERE state = 'pending' AND leased_by IS NOT NULL")
        .await
        .into_iter()
        .collect();

    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let distinct = seen(&rx).len();
        if distinct >= 10_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {distinct} of 10,000 deliveries arrived"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Counters: exact, and equal to what the receiver saw.
    for (hook, p) in hooks.iter().zip(["/a", "/b"]) {
        let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let counted = loop {
            let got = nodes[0].call(Method::GET, &path, &key, None).await;
            if got["total_deliveries"] == 5000 || Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let distinct = seen(&rx).keys().filter(|(path, _)| path == p).count();
        assert_eq!(distinct, 5000);
        assert_eq!(counted["total_deliveries"], 5000, "{counted}");
        assert_eq!(counted["successful_deliveries"], 5000);
        assert_eq!(counted["failed_deliveries"], 0);
    }
    let webhook_of: HashMap<&str, &str> = hooks
        .iter()
        .zip(["/a", "/b"])
        .map(|(h, p)| (p, h["id"].as_str().unwrap()))
        .collect();
    for ((path, event), n) in seen(&rx) {
        if n > 1 {
            let delivery = format!("{} {event}", webhook_of[path.as_str()]);
            assert!(
                in_flight.contains(&delivery),
                "{delivery} arrived {n} times but was not in flight at the kill"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_every_accepted_event_arrives_after() {
    if !backend_available() {
        return;
    }
    let rx = Receiver::start().await;
    rx.script("/slow", |_| Reply {
        delay: Duration::from_millis(10),
        ..Reply::status(200)
    });
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    app.webhook(
        &t,
        json!({"name": "slow", "url": rx.url("/slow"), "events": ["*"]}),
    )
    .await;
    let mut accepted = HashSet::new();
    let events: Vec<Value> = (0..300)
        .map(|i| json!({"type": "message.new", "data": {"n": i}}))
        .collect();
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": events})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    accepted.extend(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned()),
    );

    app.db.set_reachable(false).await;
    // Not ready, and ingest answers 503: not a 500, not a hang.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get(app.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still ready while the database is gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&t.key)
        .json(&json!({"type": "message.new", "data": {"during": "outage"}}))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    assert!(rx.hits("/slow").len() < 1000, "the outage came mid-backlog");
    app.db.set_reachable(true).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(app.url("/readyz"))
        .send()
        .await
        .ok()
        .map(|r| r.status())
        != Some(StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = app
        .event(
            &t,
            json!({"type": "message.new", "data": {"after": "outage"}}),
        )
        .await;
    accepted.insert(after["id"].as_str().unwrap().to_owned());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let arrived: HashSet<String> = rx
            .hits("/slow")
            .iter()
            .map(|h| h.header("webhook-id").to_owned())
            .collect();
        if accepted.is_subset(&arrived) {
            break;
        }
        let missing = accepted.difference(&arrived).count();
        assert!(
            Instant::now() < deadline,
            "{missing} accepted events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A new tenant, made through `node`, and a key of it.
async fn tenant_key(node: &Node, name: &str) -> String {
    let tenant = node
        .call(
            Method::POST,
            "/api/v1/tenants",
            ADMIN_KEY,
            Some(json!({"name": name})),
        )
        .await;
    let path = format!("/api/v1/tenants/{}/keys", tenant["id"].as_str().unwrap());
    let key = node
        .call(Method::POST, &path, ADMIN_KEY, Some(json!({})))
        .await;
    key["key"].as_str().unwrap().to_owned()
}
