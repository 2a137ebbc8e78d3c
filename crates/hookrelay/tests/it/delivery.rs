//! Events in, signed POSTs out: against a real receiver on loopback.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

fn hook(url: String, events: Value) -> Value {
    json!({"name": "receiver", "url": url, "events": events})
}

#[tokio::test]
async fn a_delivery_arrives_as_designed_and_verifies() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(&t, hook(rx.url("/in"), json!(["message.sent"])))
        .await;
    let secret = hookrelay_verify::Secret::parse(w["secret"].as_str().unwrap()).unwrap();

    let data = json!({"message_id": "wamid.X", "to": "+5511987654321", "z": 1, "a": 2});
    let accepted = app
        .event(&t, json!({"type": "message.sent", "data": data}))
        .await;
    assert_eq!(accepted["deliveries"], 1);
    assert_eq!(accepted["type"], "message.sent");
    let event_id = accepted["id"].as_str().unwrap();

    let hit = rx.wait_for("/in", 1, WAIT).await.remove(0);
    assert_eq!(hit.header("content-type"), "application/json");
    assert!(hit.header("user-agent").starts_with("hookrelay/"));
    assert_eq!(hit.header("webhook-id"), event_id);
    assert_eq!(hit.header("x-hookrelay-event-type"), "message.sent");
    assert_eq!(hit.header("x-hookrelay-attempt"), "1");
    let timestamp: i64 = hit.header("webhook-timestamp").parse().unwrap();
    assert!((timestamp - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(hit.header("webhook-signature").starts_with("v1,"));

    // The body is the envelope, data keys in the order they were sent.
    let body = std::str::from_utf8(&hit.body).unwrap();
    assert!(
        body.starts_with(&format!(
            r#"{{"id":"{event_id}","type":"message.sent","tenant_id":"{}","created_at":""#,
            t.id
        )),
        "{body}"
    );
    assert!(
        body.ends_with(r#""data":{"message_id":"wamid.X","to":"+5511987654321","z":1,"a":2}}"#),
        "{body}"
    );

    let headers: Vec<(&str, &str)> = hit
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tolerance = hookrelay_verify::DEFAULT_TOLERANCE;
    hookrelay_verify::verify(&secret, &headers[..], &hit.body, tolerance)
        .expect("signature verifies");
    let mut tampered = hit.body.to_vec();
    tampered[10] ^= 1;
    assert!(hookrelay_verify::verify(&secret, &headers[..], &tampered, tolerance).is_err());
    let now = chrono::Utc::now().timestamp();
    let later = now + 3600;
    assert!(
        hookrelay_verify::verify_at(&secret, &headers[..], &hit.body, tolerance, later).is_err(),
        "an old timestamp is refused"
    );
}

#[tokio::test]
async fn fan_out_reaches_exactly_the_matching_active_webhooks() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let all = app.webhook(&t, hook(rx.url("/all"), json!(["*"]))).await;
    let matching = app
        .webhook(
            &t,
            hook(rx.url("/match"), json!(["contact.created", "message.new"])),
        )
        .await;
    app.webhook(&t, hook(rx.url("/nomatch"), json!(["message.read"])))
        .await;
    let mut inactive = hook(rx.url("/inactive"), json!(["*"]));
    inactive["is_active"] = json!(false);
    app.webhook(&t, inactive).await;
    app.webhook(&other, hook(rx.url("/other-tenant"), json!(["*"])))
        .await;

    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {"n": 1}}))
        .await;
    assert_eq!(accepted["deliveries"], 2);
    let second = app
        .event(&t, json!({"type": "message.read", "data": {"n": 2}}))
        .await;
    assert_eq!(second["deliveries"], 2); // "*" and "message.read"

    rx.wait_for("/all", 2, WAIT).await;
    rx.wait_for("/match", 1, WAIT).await;
    rx.wait_for("/nomatch", 1, WAIT).await;
    let event_path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let event = app
        .eventually(&t, &event_path, WAIT, |e| {
            e["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["state"] == "succeeded")
        })
        .await;
    let mut webhooks: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    webhooks.sort();
    let mut expected = vec![
        all["id"].as_str().unwrap(),
        matching["id"].as_str().unwrap(),
    ];
    expected.sort();
    assert_eq!(webhooks, expected);
    assert_eq!(event["data"], json!({"n": 1}));
    assert_eq!(event["type"], "message.new");
    for d in event["deliveries"].as_array().unwrap() {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status"], 200);
        assert!(d["next_attempt_at"].is_null());
        assert!(d["completed_at"].is_string());
    }
    assert_eq!(rx.hits("/match").len(), 1);
    assert!(rx.hits("/inactive").is_empty());
    assert!(rx.hits("/other-tenant").is_empty());
    // Another tenant cannot read the event.
    let r = app
        .call(Method::GET, &event_path, Some(&other.key), None)
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}

/// `message.*` takes every message type of the catalogue and nothing else; an unknown group
/// is refused, naming the entry.
#[tokio::test]
async fn a_group_subscription_gets_its_group_and_nothing_else() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(&t, hook(rx.url("/messages"), json!(["message.*"])))
        .await;
    assert_eq!(w["events"], json!(["message.*"]));
    let catalogue = app.get(&t, "/api/v1/webhooks/events").await;
    let types: Vec<String> = catalogue["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .filter(|name| name != "*")
        .collect();
    let messages: Vec<&String> = types.iter().filter(|n| n.starts_with("message.")).collect();
    assert!(messages.len() >= 5, "{messages:?}");
    for event_type in &types {
        let accepted = app
            .event(
                &t,
                json!({"type": event_type, "data": {"type": event_type}}),
            )
            .await;
        let expected = u64::from(event_type.starts_with("message."));
        assert_eq!(accepted["deliveries"], expected, "{event_type}");
    }
    let hits = rx.wait_for("/messages", messages.len(), WAIT).await;
    let mut seen: Vec<String> = hits
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut want: Vec<String> = messages.into_iter().cloned().collect();
    want.sort();
    assert_eq!(seen, want);

    let r = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&t.key),
            Some(hook(rx.url("/x"), json!(["message.new", "nope.*"]))),
        )
        .await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "events[1]", "{body}");
}

#[tokio::test]
async fn failing_twice_then_succeeding_takes_three_attempts_with_growing_delays() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/flaky", |n| Reply::status(if n < 2 { 500 } else { 200 }));
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/flaky"), json!(["*"]))).await;
    let id = w["id"].as_str().unwrap();
    app.event(&t, json!({"type": "contact.created", "data": {}}))
        .await;

    let hits = rx.wait_for("/flaky", 3, WAIT).await;
    let attempts: Vec<&str> = hits
        .iter()
        .map(|h| h.header("x-hookrelay-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(
        hits.iter()
            .all(|h| h.header("webhook-id") == hits[0].header("webhook-id")),
        "same webhook-id on every attempt"
    );
    let first_gap = hits[1].at - hits[0].at;
    let second_gap = hits[2].at - hits[1].at;
    // Configured: 200 ms then 400 ms (no jitter). Lower bounds only: never flaky.
    assert!(first_gap >= Duration::from_millis(200), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(400), "{second_gap:?}");

    let path = format!("/api/v1/webhooks/{id}");
    let hook = app
        .eventually(&t, &path, WAIT, |w| w["total_deliveries"] == 1)
        .await;
    assert_eq!(hook["successful_deliveries"], 1);
    assert_eq!(hook["failed_deliveries"], 0);
    assert!(hook["last_triggered_at"].is_string());

    let logs = app.get(&t, &format!("{path}/logs")).await;
    let logs = logs["data"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let statuses: Vec<i64> = logs
        .iter()
        .map(|l| l["response_status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 500, 500], "newest first");
    let counts: Vec<i64> = logs
        .iter()
        .map(|l| l["attempt_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [3, 2, 1]);
    assert_eq!(logs[0]["is_success"], true);
    assert_eq!(logs[1]["is_success"], false);
    assert_eq!(logs[0]["event_type"], "contact.created");
    assert_eq!(logs[0]["payload"]["type"], "contact.created");
    let created: Vec<&str> = logs
        .iter()
        .map(|l| l["created_at"].as_str().unwrap())
        .collect();
    assert!(created[0] > created[1] && created[1] > created[2]);
}

#[tokio::test]
async fn a_receiver_that_always_fails_gets_retry_count_plus_one_attempts() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(503));
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/down"), json!(["*"]));
    body["retry_count"] = json!(2);
    let w = app.webhook(&t, body).await;
    let accepted = app
        .event(&t, json!({"type": "flow.failed", "data": {}}))
        .await;
    let event_path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let event = app
        .eventually(&t, &event_path, WAIT, |e| {
            e["deliveries"][0]["state"] == "failed"
        })
        .await;
    assert_eq!(event["deliveries"][0]["attempts"], 3);
    assert_eq!(event["deliveries"][0]["last_status"], 503);
    assert_eq!(rx.hits("/down").len(), 3);
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    let hook = app.get(&t, &path).await;
    assert_eq!(
        (
            hook["total_deliveries"].as_i64(),
            hook["successful_deliveries"].as_i64(),
            hook["failed_deliveries"].as_i64()
        ),
        (Some(1), Some(0), Some(1))
    );
    // No fourth attempt comes later.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rx.hits("/down").len(), 3);
}

#[tokio::test]
async fn a_slow_receiver_is_logged_as_a_timeout() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/slow", |_| Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200)
    });
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/slow"), json!(["*"]));
    body["timeout_seconds"] = json!(1);
    body["retry_count"] = json!(0);
    let w = app.webhook(&t, body).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    let log = &logs["data"][0];
    assert_eq!(log["error_message"], "timed out after 1 s");
    assert!(log["response_status"].is_null());
    assert_eq!(log["is_success"], false);
    assert!(log["response_time_ms"].as_i64().unwrap() >= 1000);
}

#[tokio::test]
async fn connection_refused_is_said_in_plain_words() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut body = hook(format!("http://127.0.0.1:{port}/x"), json!(["*"]));
    body["retry_count"] = json!(0);
    let w = app.webhook(&t, body).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(logs["data"][0]["error_message"], "connection refused");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/busy", |n| {
        if n == 0 {
            Reply {
                headers: vec![("retry-after", "2".into())],
                ..Reply::status(429)
            }
        } else {
            Reply::status(200)
        }
    });
    let t = app.tenant("Acme").await;
    app.webhook(&t, hook(rx.url("/busy"), json!(["*"]))).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let hits = rx.wait_for("/busy", 2, WAIT).await;
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 honoured over the 200 ms backoff, got {gap:?}"
    );
}

#[tokio::test]
async fn response_bodies_are_capped_and_flagged() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.delivery.response_body_cap = 16;
    let app = TestApp::spawn_with(db, config).await;
    let rx = Receiver::start().await;
    rx.script("/chatty", |_| Reply {
        body: "x".repeat(100_000),
        ..Reply::status(200)
    });
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/chatty"), json!(["*"]))).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(logs["data"][0]["response_body"], "x".repeat(16));
    assert_eq!(logs["data"][0]["response_body_truncated"], true);
    assert_eq!(logs["data"][0]["is_success"], true);
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_event_and_creates_nothing() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    app.webhook(&t, hook(rx.url("/once"), json!(["*"]))).await;
    let body = json!({"type": "message.new", "data": {"n": 1}, "idempotency_key": "msg-42"});
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let first: Value = r.json().await.unwrap();
    let r = app
        .call(Method::POST, "/api/v1/events", Some(&t.key), Some(body))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["deliveries"], 1);
    assert_eq!(second["duplicate"], true);
    assert_eq!(first["duplicate"], false);
    rx.wait_for("/once", 1, WAIT).await;
    // The same key for another tenant is another event.
    let other = app.tenant("Other").await;
    let third = app
        .event(
            &other,
            json!({"type": "message.new", "data": {}, "idempotency_key": "msg-42"}),
        )
        .await;
    assert_ne!(third["id"], first["id"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.hits("/once").len(), 1, "the duplicate delivered nothing");
}

#[tokio::test]
async fn event_input_is_validated() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    for (body, field) in [
        (json!({"data": {}}), "type"),
        (json!({"type": "*", "data": {}}), "type"),
        (json!({"type": "message.nope", "data": {}}), "type"),
        (json!({"type": "message.new"}), "data"),
        (json!({"type": "message.new", "data": "text"}), "data"),
        (
            json!({"type": "message.new", "data": {}, "idempotency_key": ""}),
            "idempotency_key",
        ),
        (
            json!({"type": "message.new", "data": {}, "idempotency_key": "k".repeat(256)}),
            "idempotency_key",
        ),
        (
            json!({"type": "message.new", "data": {}, "tenant_id": 7}),
            "tenant_id",
        ),
    ] {
        let r = app
            .call(Method::POST, "/api/v1/events", Some(&t.key), Some(body))
            .await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
    // A tenant key may name its own tenant; naming another is a 404, as for any foreign object.
    let own = json!({"type": "message.new", "data": {}, "tenant_id": t.id});
    let r = app
        .call(Method::POST, "/api/v1/events", Some(&t.key), Some(own))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let other = app.tenant("Other").await;
    for path in ["/api/v1/events", "/api/v1/events/batch"] {
        let event = json!({"type": "message.new", "data": {}, "tenant_id": other.id});
        let body = if path.ends_with("batch") {
            json!({"events": [event]})
        } else {
            event
        };
        let r = app.call(Method::POST, path, Some(&t.key), Some(body)).await;
        problem(r, StatusCode::NOT_FOUND).await;
    }
    // The admin names the tenant in the body, and it must exist.
    let r = app
        .admin(
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "message.new", "data": {}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["tenant_id"]
    );
    let r = app.admin(Method::POST, "/api/v1/events", Some(json!({"type": "message.new", "data": {}, "tenant_id": "ten_01jdzzzzzzzzzzzzzzzzzzzzzz"}))).await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["tenant_id"]
    );
    let r = app
        .admin(
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "message.new", "data": {}, "tenant_id": t.id})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // 256 KiB by default.
    let big = json!({"type": "message.new", "data": {"blob": "x".repeat(300 * 1024)}});
    let r = app
        .call(Method::POST, "/api/v1/events", Some(&t.key), Some(big))
        .await;
    problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn batch_ingest_accepts_all_or_names_each_bad_item() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    app.webhook(&t, hook(rx.url("/batch"), json!(["*"]))).await;
    let events: Vec<Value> = (0..50)
        .map(|i| json!({"type": "message.new", "data": {"i": i}}))
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
    assert_eq!(body["data"].as_array().unwrap().len(), 50);
    rx.wait_for("/batch", 50, WAIT).await;

    let bad =
        json!({"events": [{"type": "message.new", "data": {}}, {"type": "x", "data": {}}, 7]});
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(bad),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["events[1].type", "events[2]"]);
    let too_many: Vec<Value> = (0..501)
        .map(|_| json!({"type": "message.new", "data": {}}))
        .collect();
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": too_many})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["events"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.hits("/batch").len(),
        50,
        "a refused batch stores nothing"
    );
}

#[tokio::test]
async fn a_response_body_that_is_not_text_is_logged_safely() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/binary", |_| Reply {
        body: "ok\u{0}\u{1}bin".into(),
        ..Reply::status(200)
    });
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/binary"), json!(["*"]))).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(logs["data"][0]["response_body"], "ok\u{fffd}\u{1}bin");
    assert_eq!(logs["data"][0]["is_success"], true);
}
