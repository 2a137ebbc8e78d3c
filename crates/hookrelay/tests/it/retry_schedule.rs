//! A webhook's own `retry_schedule`: validated with the entry named, shown normalised, and
//! followed by the engine (the delay before each retry, as many retries as entries), on a real
//! server delivering to a real receiver that fails.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

/// Test servers retry within 5 s at most; these need room for 10 minutes.
async fn spawn_with_an_hour_cap() -> TestApp {
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.delivery.retry.max_delay = Duration::from_secs(3600);
    TestApp::spawn_with(db, config).await
}

fn ms(at: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .timestamp_millis()
}

#[tokio::test]
async fn after_the_second_failure_the_next_attempt_waits_the_second_entry() {
    require_backend!();
    let app = spawn_with_an_hour_cap().await;
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(500));
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "scheduled", "url": rx.url("/down"), "events": ["*"],
                   "retry_schedule": ["1s", "600s"]}),
        )
        .await;
    assert_eq!(w["retry_schedule"], json!(["1s", "10m"]));
    assert_eq!(w["retry_count"], 2);

    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let hits = rx.wait_for("/down", 2, WAIT).await;
    assert!(
        hits[1].at - hits[0].at >= Duration::from_millis(950),
        "the first retry waits the first entry (1 s)"
    );
    let event = app
        .eventually(&t, &path, WAIT, |e| e["deliveries"][0]["attempts"] == 2)
        .await;
    let seen_at = chrono::Utc::now().timestamp_millis();
    let delivery = &event["deliveries"][0];
    assert_eq!(delivery["state"], "pending", "{delivery}");
    assert_eq!(delivery["last_status"], 500);
    // The second attempt was recorded before `seen_at` and after its request arrived; its
    // retry comes 10 minutes (no jitter in tests) after that.
    let wait = ms(&delivery["next_attempt_at"]) - ms(&delivery["updated_at"]);
    assert_eq!(wait, 600_000, "{delivery}");
    let ahead = ms(&delivery["next_attempt_at"]) - seen_at;
    assert!(
        (590_000..=600_000).contains(&ahead),
        "next attempt {ahead} ms ahead: {delivery}"
    );
    assert_eq!(rx.hits("/down").len(), 2);
}

#[tokio::test]
async fn a_schedules_length_is_its_number_of_retries() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(503));
    let t = app.tenant("Acme").await;
    app.webhook(
        &t,
        json!({"name": "three", "url": rx.url("/down"), "events": ["*"],
               "retry_schedule": ["200ms", "200ms", "300ms"]}),
    )
    .await;
    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/events/{}", accepted["id"].as_str().unwrap());
    let event = app
        .eventually(&t, &path, WAIT, |e| e["deliveries"][0]["state"] == "failed")
        .await;
    assert_eq!(event["deliveries"][0]["attempts"], 4);
    assert_eq!(rx.hits("/down").len(), 4);
}

#[tokio::test]
async fn schedules_are_shown_normalised_and_patched_exclusively_with_retry_count() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let mut body = sample_webhook();
    body["retry_schedule"] = json!(["1500ms", " 5s", "4000ms"]);
    let w = app.webhook(&t, body).await;
    assert_eq!(w["retry_schedule"], json!(["1s 500ms", "5s", "4s"]));
    assert_eq!(w["retry_count"], 3);
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    // What is shown is accepted back as it is.
    let patch = |body: Value| app.call(Method::PATCH, &path, Some(&t.key), Some(body));
    let r = patch(json!({"retry_schedule": w["retry_schedule"]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"][0]["retry_schedule"], w["retry_schedule"]);

    // A count ends the schedule.
    let r = patch(json!({"retry_count": 1})).await;
    let hook: Value = r.json().await.unwrap();
    assert_eq!(
        (hook["retry_count"].clone(), hook["retry_schedule"].clone()),
        (json!(1), Value::Null)
    );
    let r = patch(json!({"retry_schedule": ["1s", "2s"]})).await;
    let hook: Value = r.json().await.unwrap();
    assert_eq!(
        (hook["retry_count"].clone(), hook["retry_schedule"].clone()),
        (json!(2), json!(["1s", "2s"]))
    );
    // `null` goes back to the backoff, as many times.
    let r = patch(json!({"retry_schedule": null})).await;
    let hook: Value = r.json().await.unwrap();
    assert_eq!(
        (hook["retry_count"].clone(), hook["retry_schedule"].clone()),
        (json!(2), Value::Null)
    );
    assert_eq!(app.get(&t, &path).await["retry_schedule"], Value::Null);

    // Both at once are refused, on create and on update, naming the schedule.
    let r = patch(json!({"retry_count": 2, "retry_schedule": ["1s"]})).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["retry_schedule"]);
    let mut body = sample_webhook();
    body["retry_count"] = json!(2);
    body["retry_schedule"] = json!(["1s"]);
    let r = app
        .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["retry_schedule"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot be given with retry_count"),
        "{p}"
    );
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_entry() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let refused = |schedule: Value| {
        let mut body = sample_webhook();
        body["retry_schedule"] = schedule;
        let app = &app;
        let key = t.key.clone();
        async move {
            let r = app
                .call(Method::POST, "/api/v1/webhooks", Some(&key), Some(body))
                .await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
            let errors: Vec<(String, String)> = p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap().to_owned(),
                        e["message"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            errors
        }
    };
    let pair = |f: &str, m: &str| vec![(f.to_owned(), m.to_owned())];
    let many: Vec<String> = (1..=22).map(|i| format!("{i}ms")).collect();
    assert_eq!(
        refused(json!(many)).await,
        pair(
            "retry_schedule",
            "must have from 1 to 20 entries (for no retries, set retry_count to 0)"
        )
    );
    assert_eq!(
        refused(json!(["1s", "1s", "0s"])).await,
        pair("retry_schedule[2]", "must be more than zero")
    );
    // Test servers' longest retry delay is 5 s.
    assert_eq!(
        refused(json!(["1s", "6s"])).await,
        pair(
            "retry_schedule[1]",
            "must be at most 5s, this server's longest retry delay"
        )
    );
    assert_eq!(
        refused(json!(["1s", "soon"])).await,
        pair(
            "retry_schedule[1]",
            "must be a duration such as \"30s\", \"5m\" or \"2h\""
        )
    );
    assert_eq!(
        refused(json!("fast")).await,
        pair(
            "retry_schedule",
            "must be a list of durations such as [\"5s\", \"5m\", \"2h\"], or \"standard\""
        )
    );
    let preset = refused(json!("standard")).await;
    assert_eq!(preset[0].0, "retry_schedule");
    assert!(preset[0].1.contains("(5s)"), "{preset:?}");
    // Nothing was created.
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn the_standard_preset_is_shown_as_its_delays() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.delivery.retry.max_delay = Duration::from_secs(24 * 3600);
    let app = TestApp::spawn_with(db, config).await;
    let t = app.tenant("Acme").await;
    let mut body = sample_webhook();
    body["retry_schedule"] = json!("standard");
    let w = app.webhook(&t, body).await;
    assert_eq!(
        w["retry_schedule"],
        json!(["5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h"])
    );
    assert_eq!(w["retry_count"], 9);
}
