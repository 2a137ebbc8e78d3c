//! Retention: old attempt logs and events really go, in batches; pending deliveries stay;
//! the SQLite file gives its freed pages back.
//!
//! The ages are controlled without touching the clock: deliveries are made with retention
//! off, then the server restarts with an age of one millisecond, which makes everything
//! already there "old".

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(30);
const EVENTS: usize = 40;

/// Retries an hour away: a failed first attempt leaves its delivery pending.
fn config(db: &TestDb, age: Option<Duration>) -> hookrelay::ServeConfig {
    let mut config = test_config(db);
    config.delivery.retry.base = Duration::from_secs(3600);
    config.delivery.retry.max_delay = Duration::from_secs(7200);
    config.retention.age = age;
    config.retention.batch = 7; // several batches per kind
    config.retention.pause = Duration::from_millis(5);
    config.retention.reclaim_pages = 16; // several reclaim steps
    config
}

async fn wait_until<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = std::time::Instant::now() + WAIT;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn old_logs_and_events_go_pending_deliveries_stay_and_space_is_reclaimed() {
    require_backend!();
    let db = TestDb::create().await;
    let kept = config(&db, None);
    let app = TestApp::spawn_with(db, kept).await;
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(500));
    let t = app.tenant("Acme").await;
    let ok = app
        .webhook(
            &t,
            json!({"name": "ok", "url": rx.url("/ok"), "events": ["message.sent"]}),
        )
        .await;
    let down = app
        .webhook(&t, json!({"name": "down", "url": rx.url("/down"), "events": ["flow.failed"], "retry_count": 3}))
        .await;
    let ok_path = format!("/api/v1/webhooks/{}", ok["id"].as_str().unwrap());
    let down_path = format!("/api/v1/webhooks/{}", down["id"].as_str().unwrap());

    // Bulky events, so that deleting them frees many pages.
    let blob = "x".repeat(60_000);
    let mut delivered = Vec::new();
    for n in 0..EVENTS {
        let body = json!({"type": "message.sent", "data": {"n": n, "blob": blob}});
        delivered.push(app.event(&t, body).await["id"].as_str().unwrap().to_owned());
    }
    let pending = app
        .event(&t, json!({"type": "flow.failed", "data": {}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending_path = format!("/api/v1/events/{pending}");
    app.eventually(&t, &ok_path, WAIT, |w| w["successful_deliveries"] == EVENTS)
        .await;
    app.eventually(&t, &pending_path, WAIT, |e| {
        e["deliveries"][0]["attempts"] == 1
    })
    .await;
    let logs = app.get(&t, &format!("{ok_path}/logs?limit=200")).await;
    assert_eq!(logs["data"].as_array().unwrap().len(), EVENTS);
    let pages_before = match backend() {
        Backend::Sqlite => {
            assert_eq!(
                app.db.sqlite_integer("PRAGMA auto_vacuum").await,
                2,
                "incremental"
            );
            app.db.sqlite_integer("PRAGMA page_count").await
        }
        Backend::Postgres => 0,
    };
    let db = app.stop().await;

    // Everything already stored is now older than the retention age.
    let purging = config(&db, Some(Duration::from_millis(1)));
    let app = TestApp::spawn_with(db, purging).await;
    let logs_of = |path: String| {
        let app = &app;
        let t = &t;
        async move {
            let logs = app.get(t, &format!("{path}/logs?limit=200")).await;
            logs["data"].as_array().unwrap().is_empty()
        }
    };
    wait_until("the logs are deleted", || logs_of(ok_path.clone())).await;
    wait_until("the failed attempt's log is deleted", || {
        logs_of(down_path.clone())
    })
    .await;
    let event_gone = |id: String| {
        let app = &app;
        let key = t.key.clone();
        async move {
            let path = format!("/api/v1/events/{id}");
            app.call(Method::GET, &path, Some(&key), None)
                .await
                .status()
                == StatusCode::NOT_FOUND
        }
    };
    for id in &delivered {
        wait_until("the delivered events are deleted", || {
            event_gone(id.clone())
        })
        .await;
    }

    // The pending delivery and its event stay, ready for their retry.
    let event: Value = app.get(&t, &pending_path).await;
    assert_eq!(event["deliveries"][0]["state"], "pending");
    assert_eq!(event["deliveries"][0]["attempts"], 1);
    // Counters are history, not rows: they keep counting what was delivered.
    assert_eq!(app.get(&t, &ok_path).await["successful_deliveries"], EVENTS);

    let metrics = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    let deleted = |kind: &str| {
        let series = format!(r#"hookrelay_retention_deleted_rows_total{{kind="{kind}"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert_eq!(deleted("logs"), Some((EVENTS + 1) as f64), "{metrics}");
    assert_eq!(deleted("events"), Some(EVENTS as f64), "{metrics}");

    if backend() == Backend::Sqlite {
        // The freed pages went back to the file system: none left free, the file smaller.
        let db = &app.db;
        wait_until("free pages are reclaimed", || async {
            db.sqlite_integer("PRAGMA freelist_count").await == 0
        })
        .await;
        let pages_after = db.sqlite_integer("PRAGMA page_count").await;
        assert!(
            pages_after * 2 < pages_before,
            "{pages_after} pages after, {pages_before} before"
        );
    }
}
