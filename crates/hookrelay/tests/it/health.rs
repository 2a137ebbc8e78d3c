//! Endpoint health against a real receiver: 410 Gone disables after exactly one attempt,
//! continuous failure disables after `disable_after`, a success in between never does, and
//! enabling again delivers every event of the outage.
//!
//! Five days are not waited for, and the product's defaults are not shortened: the test
//! moves the streak's start, as stored, five days back, which is exactly the state the
//! database would hold after five days of failure; the rule then runs, unchanged, on the
//! next recorded attempt. (The rule itself is unit tested with simulated days in
//! `domain/health.rs`.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

fn hook(url: String) -> Value {
    json!({"name": "receiver", "url": url, "events": ["message.sent"], "retry_count": 0})
}

fn message(n: usize) -> Value {
    json!({"type": "message.sent", "data": {"n": n}})
}

async fn post(app: &TestApp, t: &Tenant, path: &str) -> Value {
    let r = app.call(Method::POST, path, Some(&t.key), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn gone_disables_after_exactly_one_attempt_and_holds_until_enabled() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/gone", |_| Reply::status(410));
    let t = app.tenant("Acme").await;
    let mut body = hook(rx.url("/gone"));
    body["retry_count"] = json!(5);
    let w = app.webhook(&t, body).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/webhooks/{id}");

    let first = app.event(&t, message(1)).await;
    rx.wait_for("/gone", 1, WAIT).await;
    let w = app
        .eventually(&t, &path, WAIT, |w| w["status"] == "disabled")
        .await;
    assert_eq!(w["disabled_reason"], "gone");
    assert!(w["disabled_at"].is_string());
    assert_eq!(w["is_active"], false);
    // The delivery is held, not failed: it counts neither way yet.
    assert_eq!(w["failed_deliveries"], 0);
    let event = app
        .get(
            &t,
            &format!("/api/v1/events/{}", first["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(event["deliveries"][0]["state"], "pending", "{event}");

    // Events accepted while disabled are held too.
    let second = app.event(&t, message(2)).await;
    assert_eq!(second["deliveries"], 1);
    // The webhook was disabled in the transaction that recorded the attempt, so no retry
    // could be claimed after it: one attempt in the log, one at the receiver.
    let logs = app.get(&t, &format!("{path}/logs")).await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(logs["data"][0]["response_status"], 410);
    assert_eq!(rx.hits("/gone").len(), 1, "exactly one attempt");
    let metrics = app
        .call(Method::GET, "/metrics", Some(ADMIN_KEY), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hookrelay_webhooks_disabled{reason=\"gone\"} 1"),
        "{metrics}"
    );

    // The receiver is back; enabling resumes both held deliveries.
    rx.script("/gone", |_| Reply::status(200));
    let enabled = post(&app, &t, &format!("{path}/enable")).await;
    assert_eq!(enabled["status"], "active");
    assert!(enabled["disabled_reason"].is_null() && enabled["disabled_at"].is_null());
    let hits = rx.wait_for("/gone", 3, WAIT).await;
    let ns: Vec<i64> = hits[1..]
        .iter()
        .map(|h| h.json()["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        {
            let mut ns = ns.clone();
            ns.sort();
            ns
        },
        [1, 2]
    );
    app.eventually(&t, &path, WAIT, |w| w["successful_deliveries"] == 2)
        .await;
    assert_eq!(rx.hits("/gone").len(), 3);
}

/// Sends `n` events that fail (one attempt each), numbered from `from`, waiting until the
/// webhook counts `failed` failed deliveries in all (or is disabled).
async fn fail(app: &TestApp, t: &Tenant, path: &str, from: usize, n: usize, failed: i64) -> Value {
    for i in 0..n {
        app.event(t, message(from + i)).await;
    }
    let target = failed;
    app.eventually(t, path, WAIT, |w| {
        w["failed_deliveries"].as_i64() >= Some(target) || w["status"] == "disabled"
    })
    .await
}

#[tokio::test]
async fn five_days_of_continuous_failure_disable_and_the_outage_is_held() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(500));
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/down"))).await;
    assert!(w["disable_after"].is_null(), "the server's default");
    let id = w["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/webhooks/{id}");

    // 20 failed deliveries (the default minimum of failed attempts): failing, not disabled,
    // since the streak is minutes old, not five days.
    let w = fail(&app, &t, &path, 0, 20, 20).await;
    assert_eq!(w["status"], "failing", "{w}");
    assert!(w["failing_since"].is_string());
    // Five days pass with the receiver down: the stored streak began five days ago.
    let moved = app
        .db
        .execute(
            "UPDATE webhooks SET streak_started_at = streak_started_at - 432000000
             WHERE streak_started_at IS NOT NULL",
        )
        .await;
    assert_eq!(moved, 1);
    // The next failed attempt finds five days of continuous failure.
    let w = fail(&app, &t, &path, 20, 1, 21).await;
    let w = if w["status"] == "disabled" {
        w
    } else {
        app.eventually(&t, &path, WAIT, |w| w["status"] == "disabled")
            .await
    };
    assert_eq!(w["disabled_reason"], "failing");
    let attempts_when_disabled = rx.hits("/down").len();
    assert_eq!(attempts_when_disabled, 21);

    // Events of the rest of the outage are held, not attempted, not failed.
    for i in 0..3 {
        app.event(&t, message(100 + i)).await;
    }
    rx.script("/down", |_| Reply::status(200));
    assert_eq!(rx.hits("/down").len(), attempts_when_disabled);
    // Re-enabled by PATCH: every held event arrives, and the streak starts afresh.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"is_active": true})),
        )
        .await;
    let enabled: Value = r.json().await.unwrap();
    assert_eq!(enabled["status"], "active", "{enabled}");
    assert!(enabled["failing_since"].is_null());
    let hits = rx.wait_for("/down", attempts_when_disabled + 3, WAIT).await;
    let mut held: Vec<i64> = hits[attempts_when_disabled..]
        .iter()
        .map(|h| h.json()["data"]["n"].as_i64().unwrap())
        .collect();
    held.sort();
    assert_eq!(held, [100, 101, 102]);
    let w = app
        .eventually(&t, &path, WAIT, |w| w["successful_deliveries"] == 3)
        .await;
    assert_eq!(w["failed_deliveries"], 21);
    assert_eq!(w["status"], "active");
}

#[tokio::test]
async fn failures_with_a_success_between_them_never_disable() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    // 20 failures, one success, then failures again.
    rx.script("/flaky", |n| Reply::status(if n == 20 { 200 } else { 500 }));
    let t = app.tenant("Acme").await;
    let w = app.webhook(&t, hook(rx.url("/flaky"))).await;
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    fail(&app, &t, &path, 0, 20, 20).await;
    app.event(&t, message(20)).await;
    let w = app
        .eventually(&t, &path, WAIT, |w| w["successful_deliveries"] == 1)
        .await;
    assert_eq!(w["status"], "active", "a success ends the streak");
    // However long ago the first failures were, the streak began after the success.
    app.db
        .execute(
            "UPDATE webhooks SET streak_started_at = streak_started_at - 432000000
             WHERE streak_started_at IS NOT NULL",
        )
        .await;
    let w = fail(&app, &t, &path, 21, 1, 21).await;
    assert_eq!(w["status"], "active", "{w}");
    assert_eq!(w["failed_deliveries"], 21);
}

#[tokio::test]
async fn disable_after_is_a_webhook_setting() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let mut body = sample_webhook();
    body["disable_after"] = json!("2d");
    let w = app.webhook(&t, body).await;
    assert_eq!(w["disable_after"], "2d");
    let path = format!("/api/v1/webhooks/{}", w["id"].as_str().unwrap());
    for (value, shown) in [
        (json!("off"), json!("off")),
        (json!(null), json!(null)),
        (json!("36h"), json!("36h")),
    ] {
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.key),
                Some(json!({"disable_after": value})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let w: Value = r.json().await.unwrap();
        assert_eq!(w["disable_after"], shown);
    }
    for bad in [json!("soon"), json!("10s"), json!(5), json!("100d")] {
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.key),
                Some(json!({"disable_after": bad})),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), ["disable_after"], "{bad}");
    }
    // Disabled by hand: reason manual; enabled again by the route.
    let r = app
        .call(Method::POST, &format!("{path}/disable"), Some(&t.key), None)
        .await;
    let w: Value = r.json().await.unwrap();
    assert_eq!(
        (w["status"].clone(), w["disabled_reason"].clone()),
        (json!("disabled"), json!("manual"))
    );
    let w = post(&app, &t, &format!("{path}/enable")).await;
    assert_eq!(w["status"], "active");
    // Another tenant's webhook is not found.
    let other = app.tenant("Other").await;
    for action in ["enable", "disable"] {
        let r = app
            .call(
                Method::POST,
                &format!("{path}/{action}"),
                Some(&other.key),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
