//! `GET /metrics`: after a known set of deliveries, every counter says exactly what happened.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::*;
use super::receiver::{Receiver, Reply};
use hookrelay::config::MetricsAccess;

const WAIT: Duration = Duration::from_secs(20);

/// The value of one sample, by its exact name and labels; panics when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

async fn scrape(app: &TestApp, key: Option<&str>) -> reqwest::Response {
    app.call(Method::GET, "/metrics", key, None).await
}

#[tokio::test]
async fn the_counters_match_the_deliveries_made() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(500));
    let t = app.tenant("Acme").await;
    let ok = json!({"name": "ok", "url": rx.url("/ok"), "events": ["message.sent"]});
    app.webhook(&t, ok).await;
    let down = json!({"name": "down", "url": rx.url("/down"), "events": ["message.sent"], "retry_count": 1});
    app.webhook(&t, down).await;

    // Three events, each to both webhooks; a repeated idempotency key is not a new event.
    let mut events = Vec::new();
    for n in 0..3 {
        let body =
            json!({"type": "message.sent", "data": {"n": n}, "idempotency_key": format!("k{n}")});
        events.push(app.event(&t, body).await["id"].as_str().unwrap().to_owned());
    }
    let repeat = json!({"type": "message.sent", "data": {"n": 0}, "idempotency_key": "k0"});
    app.event(&t, repeat).await;
    for id in &events {
        app.eventually(&t, &format!("/api/v1/events/{id}"), WAIT, |e| {
            e["deliveries"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["state"] != "pending"))
        })
        .await;
    }

    let r = scrape(&app, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    let value = |series: &str| sample(&text, series);
    assert_eq!(value("hookrelay_events_accepted_total"), 3.0);
    assert_eq!(
        value(r#"hookrelay_deliveries_total{outcome="succeeded"}"#),
        3.0
    );
    assert_eq!(
        value(r#"hookrelay_deliveries_total{outcome="failed"}"#),
        3.0
    );
    // The failing webhook allows one retry: two attempts per delivery, all answered 500.
    assert_eq!(
        value(r#"hookrelay_attempts_total{status_class="2xx"}"#),
        3.0
    );
    assert_eq!(
        value(r#"hookrelay_attempts_total{status_class="5xx"}"#),
        6.0
    );
    assert_eq!(
        value(r#"hookrelay_attempts_total{status_class="error"}"#),
        0.0
    );
    assert_eq!(value("hookrelay_attempt_duration_seconds_count"), 9.0);
    assert_eq!(
        value(r#"hookrelay_attempt_duration_seconds_bucket{le="+Inf"}"#),
        9.0
    );
    assert_eq!(value("hookrelay_first_attempt_lag_seconds_count"), 6.0);
    for state in ["due", "scheduled", "leased"] {
        let series = format!(r#"hookrelay_queue_deliveries{{state="{state}"}}"#);
        assert_eq!(value(&series), 0.0, "{series}");
    }
    assert_eq!(value("hookrelay_attempts_in_flight"), 0.0);
    // Requests by route template: four event posts (the repeat answers 200), and the event
    // reads under one series, whatever their ids.
    let events_route = r#"method="POST",route="/api/v1/events""#;
    assert_eq!(
        value(&format!(
            "hookrelay_http_requests_total{{{events_route},status=\"202\"}}"
        )),
        3.0
    );
    assert_eq!(
        value(&format!(
            "hookrelay_http_requests_total{{{events_route},status=\"200\"}}"
        )),
        1.0
    );
    assert!(
        value(
            r#"hookrelay_http_requests_total{method="GET",route="/api/v1/events/{id}",status="200"}"#
        ) >= 3.0
    );
    assert!(!text.contains(&events[0]), "no ids in labels");
    assert!(!text.contains(&t.id), "no tenant ids in labels");
    let pool = match backend() {
        Backend::Sqlite => "writer",
        Backend::Postgres => "main",
    };
    let max = value(&format!(r#"hookrelay_db_max_connections{{pool="{pool}"}}"#));
    let in_use = value(&format!(
        r#"hookrelay_db_connections{{pool="{pool}",state="in_use"}}"#
    ));
    assert!(
        max >= 1.0 && (0.0..=max).contains(&in_use),
        "{max} {in_use}"
    );
}

#[tokio::test]
async fn metrics_can_require_the_admin_key_or_be_switched_off() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.metrics_access = MetricsAccess::Admin;
    let app = TestApp::spawn_with(db, config).await;
    let t = app.tenant("Acme").await;
    problem(scrape(&app, None).await, StatusCode::UNAUTHORIZED).await;
    problem(scrape(&app, Some(&t.key)).await, StatusCode::FORBIDDEN).await;
    assert_eq!(scrape(&app, Some(ADMIN_KEY)).await.status(), StatusCode::OK);
    let db = app.stop().await;

    let mut config = test_config(&db);
    config.metrics_access = MetricsAccess::Off;
    let app = TestApp::spawn_with(db, config).await;
    problem(scrape(&app, Some(ADMIN_KEY)).await, StatusCode::NOT_FOUND).await;
}
