//! Payloads delivered exactly as sent: numbers byte for byte in the delivery, the event and the
//! attempt log; a key given twice refused on every route that takes JSON; and the same size
//! limit for an event whichever route brings it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::Receiver;

/// Sends `body` exactly as written (no serialiser in between: it could neither keep these
/// numbers nor repeat a key).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: &str,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request sent")
}

/// `data` as a client wrote it: numbers no float can hold, forms a serialiser rewrites, the
/// spacing and key order of its author.
const DATA: &str = r#"{"big": 123456789012345678901234567890, "e": 1e2, "z": -0, "price": 1.50,
    "tiny": 0.1e-7, "id": 9007199254740993, "list": [ 1 ,2 ], "b": {"y": 1, "x": 2}}"#;

#[tokio::test]
async fn numbers_arrive_exactly_as_sent_in_the_delivery_the_event_and_the_log() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("t").await;
    let hook = app
        .webhook(
            &t,
            json!({"name": "rx", "url": rx.url("/in"), "events": ["*"]}),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap();

    let body = format!(r#"{{"type": "message.new", "data": {DATA}}}"#);
    let r = send_raw(&app, Method::POST, "/api/v1/events", &t.key, &body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let event: Value = r.json().await.unwrap();
    let event_id = event["id"].as_str().unwrap();
    // And through the batch route.
    let batch = format!(r#"{{"events": [{{"type": "message.new", "data": {DATA}}}]}}"#);
    let r = send_raw(&app, Method::POST, "/api/v1/events/batch", &t.key, &batch).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let hits = rx.wait_for("/in", 2, Duration::from_secs(10)).await;
    for hit in &hits {
        let text = std::str::from_utf8(&hit.body).unwrap();
        assert!(
            text.ends_with(&format!(r#","data":{DATA}}}"#)),
            "delivered: {text}"
        );
        hookrelay_verify_body_is_json(text);
    }

    // The event as stored, and the attempt log's copy, keep the same bytes.
    let text = app
        .call(
            Method::GET,
            &format!("/api/v1/events/{event_id}"),
            Some(&t.key),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(&format!(r#""data":{DATA}"#)), "event: {text}");
    let path = format!("/api/v1/webhooks/{hook_id}/logs");
    app.eventually(&t, &path, Duration::from_secs(10), |v| {
        v["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    let text = app
        .call(Method::GET, &path, Some(&t.key), None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text.matches(DATA).count(), 2, "logs: {text}");
    let log_id = serde_json::from_str::<Value>(&text).unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = app
        .call(Method::GET, &format!("{path}/{log_id}"), Some(&t.key), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(DATA), "log: {text}");

    // A test send's custom payload too.
    let test = format!(r#"{{"event_type": "message.new", "payload": {DATA}}}"#);
    let r = send_raw(
        &app,
        Method::POST,
        &format!("/api/v1/webhooks/{hook_id}/test"),
        &t.key,
        &test,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let hits = rx.wait_for("/in", 3, Duration::from_secs(10)).await;
    let text = std::str::from_utf8(&hits[2].body).unwrap();
    assert!(
        text.ends_with(&format!(r#","data":{DATA}}}"#)),
        "test: {text}"
    );
}

/// The delivered body is still one JSON document.
fn hookrelay_verify_body_is_json(text: &str) {
    assert!(
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
        "{text}"
    );
}

#[tokio::test]
async fn a_key_given_twice_is_a_422_naming_it_on_every_route() {
    let app = spawn_app!();
    let t = app.tenant("t").await;
    let hook = app.webhook(&t, sample_webhook()).await;
    let hook_id = hook["id"].as_str().unwrap();
    let admin = ADMIN_KEY;
    let cases: Vec<(Method, String, &str, &str, &str)> = vec![
        (
            Method::POST,
            "/api/v1/events".into(),
            &t.key,
            r#"{"type": "message.new", "data": {}, "type": "message.sent"}"#,
            "type",
        ),
        (
            Method::POST,
            "/api/v1/events".into(),
            &t.key,
            r#"{"type": "message.new", "data": {"customer": {"id": 1, "id": 2}}}"#,
            "data.customer.id",
        ),
        (
            Method::POST,
            "/api/v1/events/batch".into(),
            &t.key,
            r#"{"events": [{"type": "message.new", "data": {}},
                {"type": "message.new", "data": {"items": [{"a b": 1, "a b": 2}]}}]}"#,
            r#"events[1].data.items[0]["a b"]"#,
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            &t.key,
            r#"{"name": "a", "url": "https://example.com/a", "events": ["*"],
                "url": "https://example.com/b"}"#,
            "url",
        ),
        (
            Method::PATCH,
            format!("/api/v1/webhooks/{hook_id}"),
            &t.key,
            r#"{"headers": {"X-A": "1", "X-A": "2"}}"#,
            "headers.X-A",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{hook_id}/test"),
            &t.key,
            r#"{"payload": {"x": 1, "\u0078": 2}}"#,
            "payload.x",
        ),
        (
            Method::POST,
            "/api/v1/tenants".into(),
            admin,
            r#"{"name": "a", "name": "b"}"#,
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/tenants/{}/keys", t.id),
            admin,
            r#"{"name": "a", "name": "b"}"#,
            "name",
        ),
    ];
    for (method, path, key, body, field) in cases {
        let r = send_raw(&app, method.clone(), &path, key, body).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [field], "{method} {path}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("twice"), "{method} {path}: {p}");
    }
    // Nothing was created or changed by any of them.
    let got = app.get(&t, &format!("/api/v1/webhooks/{hook_id}")).await;
    assert_eq!(got["headers"], json!({}));
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // The same key in two objects is fine.
    let r = send_raw(
        &app,
        Method::POST,
        "/api/v1/events",
        &t.key,
        r#"{"type": "message.new", "data": {"id": 1, "sub": {"id": 2}}}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

async fn spawn_small(max_event: usize, max_batch: Option<usize>) -> TestApp {
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.max_event_bytes = max_event;
    config.max_batch_bytes = max_batch;
    TestApp::spawn_with(db, config).await
}

/// An event of about `bytes` bytes (its JSON object).
fn event_of(bytes: usize) -> Value {
    let pad = bytes.saturating_sub(60);
    json!({"type": "message.new", "data": {"text": "x".repeat(pad)}})
}

#[tokio::test]
async fn an_event_over_the_limit_is_refused_in_a_batch_as_when_posted_alone() {
    require_backend!();
    let app = spawn_small(4096, None).await;
    let rx = Receiver::start().await;
    let t = app.tenant("t").await;
    app.webhook(
        &t,
        json!({"name": "rx", "url": rx.url("/in"), "events": ["*"]}),
    )
    .await;
    let big = event_of(6000);
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(big.clone()),
        )
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;

    // The batch's total (16 × 4 KiB) is not the event's limit: each event has its own.
    let batch = json!({"events": [event_of(100), big, event_of(100), event_of(5000)]});
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(batch),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["events[1]", "events[3]"], "{p}");
    assert!(
        p["errors"][0]["message"].as_str().unwrap().contains("4096"),
        "{p}"
    );
    // Events at the limit pass, in a batch as alone.
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": [event_of(4000), event_of(100)]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let hits = rx.wait_for("/in", 2, Duration::from_secs(10)).await;
    assert!(hits.iter().all(|h| h.body.len() < 4096 + 200));
}

#[tokio::test]
async fn a_batch_has_its_own_configurable_total_limit() {
    require_backend!();
    let app = spawn_small(4096, Some(10_000)).await;
    let t = app.tenant("t").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": [event_of(4000), event_of(4000), event_of(4000)]})),
        )
        .await;
    let p = problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(p["detail"].as_str().unwrap().contains("10000"), "{p}");
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": [event_of(4000), event_of(4000)]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}
