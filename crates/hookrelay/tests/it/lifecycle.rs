//! Webhook changes meet deliveries in flight; test sends; logs and stats agree with what the
//! receiver saw.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

fn hook(url: String) -> Value {
    json!({"name": "receiver", "url": url, "events": ["*"]})
}

#[tokio::test]
async fn deleting_a_webhook_cancels_its_pending_deliveries() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/gone", |_| Reply::status(500));
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/gone"));
    body["retry_count"] = json!(10);
    let w = app.webhook(&t, body).await;
    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    rx.wait_for("/gone", 1, WAIT).await;
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    let r = app.call(Method::DELETE, &path, Some(&t.key), None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let event_path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let event = app
        .eventually(&t, &event_path, WAIT, |e| {
            e["deliveries"][0]["state"] != "pending"
        })
        .await;
    assert_eq!(event["deliveries"][0]["state"], "cancelled");
    let attempts = rx.hits("/gone").len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rx.hits("/gone").len(),
        attempts,
        "no attempt after the delete"
    );
}

#[tokio::test]
async fn deactivating_holds_pending_deliveries_until_reactivated() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    // Fails until told otherwise, so the delivery is pending when the webhook is switched off.
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = healthy.clone();
    rx.script("/held", move |_| {
        Reply::status(if flag.load(std::sync::atomic::Ordering::SeqCst) {
            200
        } else {
            500
        })
    });
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/held"));
    body["retry_count"] = json!(10);
    let w = app.webhook(&t, body).await;
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    rx.wait_for("/held", 1, WAIT).await;

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Events while inactive fan out to nothing.
    let while_off = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    assert_eq!(while_off["deliveries"], 0);
    // A retry in flight at the switch may still land; after that, silence.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_at = rx.hits("/held").len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        rx.hits("/held").len(),
        held_at,
        "nothing is attempted while inactive"
    );
    let event_path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    assert_eq!(
        app.get(&t, &event_path).await["deliveries"][0]["state"],
        "pending"
    );

    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"is_active": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let event = app
        .eventually(&t, &event_path, WAIT, |e| {
            e["deliveries"][0]["state"] == "succeeded"
        })
        .await;
    assert!(event["deliveries"][0]["attempts"].as_i64().unwrap() > held_at as i64 - 1);
}

#[tokio::test]
async fn test_send_is_synchronous_logged_and_not_counted() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/t", |n| {
        if n == 0 {
            Reply {
                body: "thanks".into(),
                ..Reply::status(200)
            }
        } else {
            Reply::status(418)
        }
    });
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/t"));
    body["events"] = json!(["conversation.assigned"]);
    let w = app.webhook(&t, body).await;
    let secret = hookrelay_verify::Secret::parse(w["secret"].as_str().unwrap()).unwrap();
    let base = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());

    // No body at all: the webhook's first subscribed type with its catalogue sample.
    let r = app
        .client
        .post(app.url(&format!("{base}/test")))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["response_status"], 200);
    assert_eq!(out["response_body"], "thanks");
    assert_eq!(out["event_type"], "conversation.assigned");
    assert!(out["error"].is_null());
    assert!(out["response_time_ms"].is_i64());
    let hit = rx.hits("/t").remove(0);
    let headers: Vec<(&str, &str)> = hit
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    hookrelay_verify::verify(
        &secret,
        &headers[..],
        &hit.body,
        hookrelay_verify::DEFAULT_TOLERANCE,
    )
    .expect("test sends are signed");
    let sample = &hit.json()["data"];
    assert!(
        sample.is_object() && !sample.as_object().unwrap().is_empty(),
        "catalogue sample sent"
    );

    // A custom payload; the receiver now answers 418.
    let r = app
        .call(
            Method::POST,
            &format!("{base}/test"),
            Some(&t.key),
            Some(json!({"event_type": "message.new", "payload": {"hello": "world"}})),
        )
        .await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["success"], false);
    assert_eq!(out["response_status"], 418);
    assert_eq!(rx.hits("/t")[1].json()["data"], json!({"hello": "world"}));

    let logs = app.get(&t, &format!("{base}/logs")).await;
    let logs = logs["data"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l["is_test"] == true));
    assert_eq!(logs[0]["payload"]["data"], json!({"hello": "world"}));
    let hook = app.get(&t, &base).await;
    assert_eq!(hook["total_deliveries"], 0, "test sends are not deliveries");

    for (body, field) in [
        (json!({"event_type": "*"}), "event_type"),
        (json!({"payload": [1]}), "payload"),
        (json!({"retries": 3}), "retries"),
    ] {
        let r = app
            .call(
                Method::POST,
                &format!("{base}/test"),
                Some(&t.key),
                Some(body),
            )
            .await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
}

#[tokio::test]
async fn logs_and_stats_agree_with_the_receiver() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    // Every third request fails once; the retry succeeds.
    rx.script("/mixed", |n| {
        Reply::status(if n % 3 == 1 { 500 } else { 200 })
    });
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/mixed"))).await;
    let base = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    for i in 0..9 {
        let kind = if i % 2 == 0 {
            "message.new"
        } else {
            "contact.created"
        };
        app.event(&t, json!({"type": kind, "data": {"i": i}})).await;
    }
    let stats = app
        .eventually(&t, &format!("{base}/stats"), WAIT, |s| {
            s["total_deliveries"] == 9
        })
        .await;
    let hits = rx.hits("/mixed");
    let ok_hits = hits.len() - hits.iter().enumerate().filter(|(n, _)| n % 3 == 1).count();
    assert_eq!(stats["successful_deliveries"], 9);
    assert_eq!(stats["failed_deliveries"], 0);
    assert_eq!(stats["pending_deliveries"], 0);
    assert_eq!(stats["success_rate"], 1.0);
    assert_eq!(stats["attempts"]["total"], hits.len());
    assert_eq!(stats["attempts"]["successful"], ok_hits);
    assert_eq!(stats["attempts"]["failed"], hits.len() - ok_hits);
    assert_eq!(stats["consecutive_failures"], 0);
    for p in ["avg", "p50", "p95", "p99"] {
        assert!(stats["response_time_ms"][p].is_number(), "{p}: {stats}");
    }
    assert!(stats["last_success_at"].is_string() && stats["last_failure_at"].is_string());

    // Logs: one per receiver hit, newest first, pageable and filterable.
    let all = app.get(&t, &format!("{base}/logs?limit=200")).await;
    let all = all["data"].as_array().unwrap();
    assert_eq!(all.len(), hits.len());
    let mut paged = Vec::new();
    let mut path = format!("{base}/logs?limit=4");
    loop {
        let page = app.get(&t, &path).await;
        paged.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{base}/logs?limit=4&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = all.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(paged, ids);
    let failed = app.get(&t, &format!("{base}/logs?success=false")).await;
    assert_eq!(
        failed["data"].as_array().unwrap().len(),
        hits.len() - ok_hits
    );
    assert!(
        failed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["is_success"] == false && l["response_status"] == 500)
    );
    let contacts = app
        .get(
            &t,
            &format!("{base}/logs?event_type=contact.created&limit=200"),
        )
        .await;
    assert!(
        contacts["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["event_type"] == "contact.created")
    );
    assert!(!contacts["data"].as_array().unwrap().is_empty());
    let future = app
        .get(&t, &format!("{base}/logs?since=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(future["data"], json!([]));
    let past = app
        .get(&t, &format!("{base}/logs?until=2000-01-01T00:00:00Z"))
        .await;
    assert_eq!(past["data"], json!([]));
    let since_stats = app
        .get(&t, &format!("{base}/stats?since=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(since_stats["total_deliveries"], 0);
    assert!(since_stats["success_rate"].is_null());

    // One log in full, with the headers that were sent.
    let one = app
        .get(
            &t,
            &format!("{base}/logs/{}", all[0]["id"].as_str().unwrap()),
        )
        .await;
    let headers = &one["request_headers"];
    assert_eq!(headers["webhook-id"], one["event_id"]);
    assert!(
        headers["webhook-signature"]
            .as_str()
            .unwrap()
            .starts_with("v1,")
    );
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        all[0].get("request_headers").is_none(),
        "lists leave headers out"
    );

    for (query, field) in [
        ("success=maybe", "success"),
        ("since=yesterday", "since"),
        ("event_type=nope", "event_type"),
    ] {
        let r = app
            .call(
                Method::GET,
                &format!("{base}/logs?{query}"),
                Some(&t.key),
                None,
            )
            .await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
    let r = app
        .call(
            Method::GET,
            &format!("{base}/logs/att_01jdzzzzzzzzzzzzzzzzzzzzzz"),
            Some(&t.key),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn consecutive_failures_count_since_the_last_success() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/sick", |n| Reply::status(if n == 0 { 200 } else { 500 }));
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/sick"));
    body["retry_count"] = json!(1);
    let w = app.webhook(&t, body).await;
    let base = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    rx.wait_for("/sick", 1, WAIT).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let stats = app
        .eventually(&t, &format!("{base}/stats"), WAIT, |s| {
            s["total_deliveries"] == 2
        })
        .await;
    assert_eq!(stats["consecutive_failures"], 2);
    assert_eq!(stats["success_rate"], 0.5);
    assert_eq!(stats["failed_deliveries"], 1);
}

#[tokio::test]
async fn another_tenant_cannot_touch_deliveries_logs_stats_or_tests() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let w = app.webhook(&a, hook(rx.url("/a"))).await;
    let accepted = app
        .event(&a, json!({"type": "message.new", "data": {}}))
        .await;
    rx.wait_for("/a", 1, WAIT).await;
    let base = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&a, &format!("{base}/logs"), WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    let log_id = logs["data"][0]["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("{base}/logs")),
        (Method::GET, format!("{base}/logs/{log_id}")),
        (Method::GET, format!("{base}/stats")),
        (Method::POST, format!("{base}/test")),
        (
            Method::GET,
            format!("/api/v1/events/{}", accepted["id"].as_str().unwrap()),
        ),
    ] {
        let r = app.call(method, &path, Some(&b.key), None).await;
        problem(r, StatusCode::NOT_FOUND).await;
    }
    assert_eq!(rx.hits("/a").len(), 1, "B's test call sent nothing");
}
