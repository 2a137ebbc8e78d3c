//! After a receiver broke: a webhook's deliveries as a resource, retrying one failed
//! delivery, replaying an event, and recovering a window of failures oldest first, at the
//! pace, counted exactly once. Against the real server and a real receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(30);

/// A receiver path that fails (500) until `fixed` is set, then answers 200.
fn breakable(rx: &Receiver, path: &str) -> Arc<AtomicBool> {
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    rx.script(path, move |_| {
        Reply::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            500
        })
    });
    fixed
}

async fn send(
    app: &TestApp,
    t: &Tenant,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let r = app.call(method, path, Some(&t.key), body).await;
    let status = r.status();
    let json = r.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// Posts `n` `message.sent` events numbered from 0, in batches.
async fn events(app: &TestApp, t: &Tenant, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(250) {
        let batch: Vec<Value> = (start..n.min(start + 250))
            .map(|i| json!({"type": "message.sent", "data": {"n": i}}))
            .collect();
        let (status, answer) = send(
            app,
            t,
            Method::POST,
            "/api/v1/events/batch",
            Some(json!({"events": batch})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        for e in answer["data"].as_array().unwrap() {
            ids.push(e["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

async fn webhook_counts(app: &TestApp, t: &Tenant, id: &str, failed: i64) -> Value {
    app.eventually(t, &format!("/api/v1/webhooks/{id}"), WAIT * 2, |w| {
        w["failed_deliveries"] == failed && w["total_deliveries"] == failed
    })
    .await
}

#[tokio::test]
async fn a_thousand_failures_recover_exactly_once_oldest_first_at_the_pace() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    const PACE: u32 = 250;
    config.recovery_pace = PACE;
    let app = TestApp::spawn_with(db, config).await;
    let rx = Receiver::start().await;
    let fixed = breakable(&rx, "/crm");
    let ops = app
        .admin(
            Method::POST,
            "/api/v1/operational-webhooks",
            Some(json!({"name": "ops", "url": rx.url("/ops"), "events": ["recovery.completed"]})),
        )
        .await;
    assert_eq!(ops.status(), StatusCode::CREATED);
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "crm", "url": rx.url("/crm"), "events": ["message.sent"], "retry_count": 0}),
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();

    const N: usize = 1000;
    let since = ago(1);
    let sent = events(&app, &t, N).await;
    webhook_counts(&app, &t, &id, N as i64).await;
    let failed = app
        .get(
            &t,
            &format!("/api/v1/webhooks/{id}/deliveries?status=failed&limit=5"),
        )
        .await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 5, "{failed}");
    assert_eq!(failed["data"][0]["status"], "failed");
    let before = rx.hits("/crm").len();
    assert_eq!(before, N);

    fixed.store(true, Ordering::SeqCst);
    let asked = Instant::now();
    let (status, recovery) = send(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/webhooks/{id}/recover"),
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{recovery}");
    assert_eq!(recovery["state"], "running");
    assert_eq!(recovery["pace"], PACE);
    assert_eq!(recovery["total"], N as i64, "{recovery}");
    let rid = recovery["id"].as_str().unwrap().to_owned();
    let done = app
        .eventually(
            &t,
            &format!("/api/v1/webhooks/{id}/recoveries/{rid}"),
            WAIT * 2,
            |r| r["state"] == "completed",
        )
        .await;
    assert_eq!(done["progress_percent"], 100);
    assert_eq!(done["requeued"], N as i64);
    assert!(done["completed_at"].is_string());

    let hits = rx.wait_for("/crm", 2 * N, WAIT * 2).await;
    let recovered = &hits[before..];
    // Every one exactly once more.
    let mut times: HashMap<String, usize> = HashMap::new();
    for h in recovered {
        *times
            .entry(h.json()["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(times.len(), N);
    assert!(sent.iter().all(|e| times.get(e) == Some(&1)));
    // Oldest first: an id's first ten characters after the prefix are its creation
    // millisecond (events of one batch share one), so arrival order is that order but for
    // the few deliveries that overtake one another in flight (16 may be open at once).
    let order: Vec<&str> = recovered
        .iter()
        .map(|h| &h.header("webhook-id")[..14])
        .collect();
    let inversions = order.windows(2).filter(|p| p[1] < p[0]).count();
    assert!(inversions <= N / 100, "{inversions} out of order");
    // Never faster than the pace: the last of N slots is (N - 1) / pace after the first,
    // and the first cannot come before the request (the server's clock counts whole
    // milliseconds, hence the one millisecond).
    let last = recovered.iter().map(|h| h.at).max().unwrap();
    let floor = Duration::from_millis(((N as u64 - 1) * 1000) / u64::from(PACE));
    assert!(
        last.duration_since(asked) + Duration::from_millis(1) >= floor,
        "{N} deliveries in {:?}, faster than {PACE}/s",
        last.duration_since(asked)
    );
    // Counted once: one delivery each, now succeeded.
    let w = app
        .eventually(&t, &format!("/api/v1/webhooks/{id}"), WAIT, |w| {
            w["successful_deliveries"] == N as i64
        })
        .await;
    assert_eq!(w["total_deliveries"], N as i64, "{w}");
    assert_eq!(w["failed_deliveries"], 0, "{w}");
    let stats = app.get(&t, &format!("/api/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["successful_deliveries"], N as i64, "{stats}");
    assert_eq!(stats["failed_deliveries"], 0, "{stats}");
    assert_eq!(stats["attempts"]["total"], 2 * N as i64, "{stats}");

    // The operator hears that it completed.
    let ops = rx.wait_for("/ops", 1, WAIT).await;
    let notice = ops[0].json();
    assert_eq!(notice["type"], "recovery.completed");
    assert_eq!(notice["data"]["recovery_id"], rid.as_str());
    assert_eq!(notice["data"]["webhook_id"], id.as_str());
    assert_eq!(notice["data"]["tenant_id"], t.id.as_str());
    assert_eq!(notice["data"]["requeued"], N as i64);
    let listed = app
        .get(&t, &format!("/api/v1/webhooks/{id}/recoveries"))
        .await;
    assert_eq!(listed["data"][0]["id"], rid.as_str());
}

#[tokio::test]
async fn a_retried_delivery_moves_the_counters_once_and_shows_every_attempt() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let fixed = breakable(&rx, "/r");
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/r"), "events": ["message.sent"], "retry_count": 1}),
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let event = app
        .event(&t, json!({"type": "message.sent", "data": {"x": 1}}))
        .await;
    webhook_counts(&app, &t, &id, 1).await;
    let list = app
        .get(&t, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    let delivery = &list["data"][0];
    assert_eq!(delivery["status"], "failed", "{list}");
    assert_eq!(delivery["event_id"], event["id"]);
    assert_eq!(delivery["event_type"], "message.sent");
    let did = delivery["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/webhooks/{id}/deliveries/{did}");

    fixed.store(true, Ordering::SeqCst);
    let (status, queued) = send(&app, &t, Method::POST, &format!("{path}/retry"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "pending");
    assert_eq!(queued["id"], did.as_str());
    let detail = app
        .eventually(&t, &path, WAIT, |d| d["status"] == "succeeded")
        .await;
    // Two failed attempts (first try and one retry), then the retried chain's success.
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{detail}");
    assert_eq!(log[0]["response_status"], 500);
    assert_eq!(log[2]["response_status"], 200);
    assert_eq!(rx.hits("/r").len(), 3);
    let hits = rx.hits("/r");
    assert_eq!(hits[2].header("webhook-id"), hits[0].header("webhook-id"));
    let w = app.get(&t, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(
        (
            &w["total_deliveries"],
            &w["successful_deliveries"],
            &w["failed_deliveries"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{w}"
    );
    // Only a failed delivery is retried.
    let (status, problem) = send(&app, &t, Method::POST, &format!("{path}/retry"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("succeeded"));
}

#[tokio::test]
async fn a_replay_sends_the_event_again_with_its_own_webhook_id() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/a", |_| Reply::status(200));
    rx.script("/b", |_| Reply::status(200));
    let t = app.tenant("Acme").await;
    let a = app
        .webhook(
            &t,
            json!({"name": "a", "url": rx.url("/a"), "events": ["message.sent"]}),
        )
        .await;
    let b = app
        .webhook(
            &t,
            json!({"name": "b", "url": rx.url("/b"), "events": ["*"]}),
        )
        .await;
    let other = app
        .webhook(
            &t,
            json!({"name": "c", "url": rx.url("/c"), "events": ["contact.created"]}),
        )
        .await;
    let event = app
        .event(&t, json!({"type": "message.sent", "data": {"x": 1}}))
        .await;
    let eid = event["id"].as_str().unwrap();
    rx.wait_for("/a", 1, WAIT).await;
    rx.wait_for("/b", 1, WAIT).await;

    // Only the webhook named.
    let replay = format!("/api/v1/events/{eid}/replay");
    let (status, made) = send(
        &app,
        &t,
        Method::POST,
        &replay,
        Some(json!({"webhook_ids": [a["id"]]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{made}");
    assert_eq!(made["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(made["deliveries"][0]["webhook_id"], a["id"]);
    let hits = rx.wait_for("/a", 2, WAIT).await;
    assert_eq!(hits[1].header("webhook-id"), eid);
    assert_eq!(hits[1].json()["data"], json!({"x": 1}));
    assert_eq!(hits[0].body, hits[1].body, "the same envelope");

    // Every webhook subscribed now.
    let (status, made) = send(&app, &t, Method::POST, &replay, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{made}");
    assert_eq!(made["deliveries"].as_array().unwrap().len(), 2, "{made}");
    rx.wait_for("/a", 3, WAIT).await;
    rx.wait_for("/b", 2, WAIT).await;
    assert!(rx.hits("/c").is_empty());

    // A webhook that does not subscribe, or another's id, is named in the problem.
    let r = app
        .call(
            Method::POST,
            &replay,
            Some(&t.key),
            Some(json!({"webhook_ids": [b["id"], other["id"], "wh_01jdzzzzzzzzzzzzzzzzzzzzzz", "nope"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), vec!["webhook_ids[3]"], "{p}");
    let r = app
        .call(
            Method::POST,
            &replay,
            Some(&t.key),
            Some(json!({"webhook_ids": [b["id"], other["id"], "wh_01jdzzzzzzzzzzzzzzzzzzzzzz"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), vec!["webhook_ids[1]", "webhook_ids[2]"], "{p}");
    let r = app
        .call(
            Method::POST,
            &replay,
            Some(&t.key),
            Some(json!({"webhook_ids": []})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), vec!["webhook_ids"], "{p}");
    // A delivery for each replay, counted as such.
    let w = app
        .eventually(
            &t,
            &format!("/api/v1/webhooks/{}", a["id"].as_str().unwrap()),
            WAIT,
            |w| w["successful_deliveries"] == 3,
        )
        .await;
    assert_eq!(w["total_deliveries"], 3);
}

#[tokio::test]
async fn deliveries_list_by_status_and_page_and_a_disabled_webhooks_are_held() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.hold("/slow");
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "s", "url": rx.url("/slow"), "events": ["message.sent"]}),
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/disable"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A paused webhook gets no new deliveries; enable, queue five, pause again.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/enable"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/disable"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/enable"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let sent = events(&app, &t, 5).await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/disable"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let base = format!("/api/v1/webhooks/{id}/deliveries");
    let held = app
        .eventually(&t, &format!("{base}?status=held"), WAIT, |l| {
            l["data"].as_array().unwrap().len() == 5
        })
        .await;
    assert!(
        held["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "held")
    );
    let pending = app.get(&t, &format!("{base}?status=pending")).await;
    assert!(pending["data"].as_array().unwrap().is_empty(), "{pending}");
    // Newest first, two to a page, every one once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&t, &format!("{base}?limit=2&cursor={cursor}"))
            .await;
        for d in page["data"].as_array().unwrap() {
            let at = d["created_at"].as_str().unwrap().to_owned();
            seen.push((at, d["event_id"].as_str().unwrap().to_owned()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    // Events of one batch share a millisecond, so only the times are ordered.
    assert!(seen.windows(2).all(|p| p[0].0 >= p[1].0), "{seen:?}");
    let mut got: Vec<String> = seen.into_iter().map(|(_, e)| e).collect();
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want);
    // Bad filters name their parameter.
    let r = app
        .call(
            Method::GET,
            &format!("{base}?status=lost&since=yesterday"),
            Some(&t.key),
            None,
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(named, vec!["since", "status"]);
    rx.release("/slow");
}

#[tokio::test]
async fn one_recovery_runs_per_webhook_windows_are_bounded_and_cancelling_stops_it() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    // Slow enough to still be running while the test looks at it.
    config.recovery_pace = 1;
    let app = TestApp::spawn_with(db, config).await;
    let rx = Receiver::start().await;
    let fixed = breakable(&rx, "/r");
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/r"), "events": ["message.sent"], "retry_count": 0}),
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let since = ago(1);
    events(&app, &t, 20).await;
    webhook_counts(&app, &t, &id, 20).await;
    fixed.store(true, Ordering::SeqCst);
    let recover = format!("/api/v1/webhooks/{id}/recover");

    // Windows: in the future, empty, past retention (30 days by default), malformed.
    for (body, field) in [
        (json!({"since": "2999-01-01T00:00:00Z"}), "since"),
        (json!({"since": since, "until": since}), "since"),
        (json!({"since": "2000-01-01T00:00:00Z"}), "since"),
        (json!({"since": "monday"}), "since"),
        (json!({"since": since, "until": 5}), "until"),
        (json!({}), "since"),
        (json!({"since": since, "from": since}), "from"),
    ] {
        let r = app
            .call(Method::POST, &recover, Some(&t.key), Some(body.clone()))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), vec![field], "{body}: {p}");
    }
    let r = app
        .call(
            Method::POST,
            &recover,
            Some(&t.key),
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("retention"),
        "{p}"
    );

    let (status, first) = send(
        &app,
        &t,
        Method::POST,
        &recover,
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let rid = first["id"].as_str().unwrap().to_owned();
    let (status, second) = send(
        &app,
        &t,
        Method::POST,
        &recover,
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert!(
        second["detail"].as_str().unwrap().contains(&rid),
        "{second}"
    );

    rx.wait_for("/r", 21, WAIT).await;
    let path = format!("/api/v1/webhooks/{id}/recoveries/{rid}");
    let (status, cancelled) = send(&app, &t, Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let requeued = cancelled["requeued"].as_i64().unwrap();
    assert!((1..20).contains(&requeued), "{cancelled}");
    assert!(cancelled["progress_percent"].as_u64().unwrap() < 100);
    // Nothing more is re-queued after the cancel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = app.get(&t, &path).await;
    assert_eq!(after["requeued"], requeued, "{after}");
    assert!(rx.hits("/r").len() as i64 <= 20 + requeued);
    // Cancelling again is harmless; then a new recovery may start.
    let (status, _) = send(&app, &t, Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, next) = send(
        &app,
        &t,
        Method::POST,
        &recover,
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{next}");
    assert_eq!(next["total"], 20 - requeued, "{next}");
}

/// RFC 3339 for "a little while ago", as a client would compute its window.
fn ago(secs: i64) -> String {
    hookrelay::domain::time::Timestamp::now()
        .plus_millis(-secs * 1000)
        .to_rfc3339()
}

/// docs/recovery.md's runbook, run as written: a receiver failed some deliveries, then
/// answered 410 (disabling the webhook, one delivery held), then was fixed.
#[tokio::test]
async fn the_runbook_runs_as_written() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let answer = Arc::new(std::sync::atomic::AtomicU16::new(500));
    let now = answer.clone();
    rx.script("/r", move |_| Reply::status(now.load(Ordering::SeqCst)));
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/r"), "events": ["message.sent"], "retry_count": 0}),
        )
        .await;
    let id = w["id"].as_str().unwrap().to_owned();
    let since = ago(1);
    let sent = events(&app, &t, 5).await;
    webhook_counts(&app, &t, &id, 5).await;
    answer.store(410, Ordering::SeqCst);
    let held = events(&app, &t, 1).await;
    app.eventually(&t, &format!("/api/v1/webhooks/{id}"), WAIT, |w| {
        w["status"] == "disabled"
    })
    .await;
    answer.store(200, Ordering::SeqCst);

    let script = super::helpers::doc_block("docs/recovery.md", "recovery-runbook");
    let (base, key, hook) = (app.base.clone(), t.key.clone(), id.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("HOOKRELAY", base)
            .env("TENANT_KEY", key)
            .env("WEBHOOK_ID", hook)
            .env("SINCE", since)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#"{"status":"disabled","disabled_reason":"gone","failed_deliveries":5}"#),
        "{stdout}"
    );
    assert!(stdout.contains("message.sent 500"), "{stdout}");
    assert!(stdout.contains("\nactive\n"), "{stdout}");
    assert!(
        stdout.contains(r#"{"state":"completed","total":5,"requeued":5,"progress_percent":100}"#),
        "{stdout}"
    );
    // Every event of the outage arrived once more: the five failed and the one held.
    let hits = rx.wait_for("/r", 12, WAIT).await;
    let again: Vec<&str> = hits[6..].iter().map(|h| h.header("webhook-id")).collect();
    for e in sent.iter().chain(&held) {
        assert_eq!(
            again.iter().filter(|a| **a == e).count(),
            1,
            "{e}: {again:?}"
        );
    }
    let w = app
        .eventually(&t, &format!("/api/v1/webhooks/{id}"), WAIT, |w| {
            w["successful_deliveries"] == 6
        })
        .await;
    assert_eq!(w["failed_deliveries"], 0, "{w}");
    assert_eq!(w["total_deliveries"], 6, "{w}");
}
