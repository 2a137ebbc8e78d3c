//! Custom headers per webhook: sent with every delivery, hidden in the attempt log, and never
//! able to override framing, our signature headers or `x-hookrelay-*`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

#[tokio::test]
async fn custom_headers_go_out_with_every_delivery_and_are_hidden_in_logs() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/in", |_| Reply::status(200));
    let t = app.tenant("t").await;
    let hook = app
        .webhook(
            &t,
            json!({"name": "h", "url": rx.url("/in"), "events": ["*"],
                   "headers": {"Authorization": "Bearer gw-token", "X-Team": "crm"}}),
        )
        .await;
    // Answers name them with their values masked (masking.rs reads them back).
    assert_eq!(
        hook["headers"],
        json!({"authorization": "***", "x-team": "***"})
    );
    let id = hook["id"].as_str().unwrap().to_owned();
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let hits = rx.wait_for("/in", 1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].header("authorization"), "Bearer gw-token");
    assert_eq!(hits[0].header("x-team"), "crm");
    // Ours are untouched beside them.
    assert!(hits[0].header("webhook-signature").starts_with("v1,"));

    // The attempt log names them but does not show the values.
    let logs = app
        .eventually(
            &t,
            &format!("/api/v1/webhooks/{id}/logs"),
            Duration::from_secs(10),
            |v| v["data"].as_array().is_some_and(|d| !d.is_empty()),
        )
        .await;
    let log_id = logs["data"][0]["id"].as_str().unwrap();
    let log = app
        .get(&t, &format!("/api/v1/webhooks/{id}/logs/{log_id}"))
        .await;
    let sent = &log["request_headers"];
    assert_eq!(sent["authorization"], "***", "{log}");
    assert_eq!(sent["x-team"], "***");
    assert!(!log.to_string().contains("gw-token"));

    // PATCH replaces the whole set; {} removes them.
    let path = format!("/api/v1/webhooks/{id}");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"headers": {"X-Only": "1"}})),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"], json!({"x-only": "***"}));
    let read = app.get(&t, &format!("{path}/headers")).await;
    assert_eq!(read["headers"], json!({"x-only": "1"}));
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"headers": {}})),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["headers"], json!({}));
    // A test send carries them too.
    app.call(
        Method::PATCH,
        &path,
        Some(&t.key),
        Some(json!({"headers": {"X-Probe": "yes"}})),
    )
    .await;
    let r = app
        .call(Method::POST, &format!("{path}/test"), Some(&t.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let hits = rx.wait_for("/in", 2, Duration::from_secs(10)).await;
    assert_eq!(hits[1].header("x-probe"), "yes");
    assert_eq!(hits[1].header("authorization"), "");
}

/// Each header a tenant must not set is refused, by name, on create and on update.
#[tokio::test]
async fn reserved_and_malformed_headers_are_refused_by_name() {
    let app = spawn_app!();
    let t = app.tenant("t").await;
    let existing = app.webhook(&t, sample_webhook()).await;
    let patch_path = format!("/api/v1/webhooks/{}", existing["id"].as_str().unwrap());
    let cases: Vec<(&str, Value)> = vec![
        ("Host", json!("evil.example")),
        ("Content-Length", json!("0")),
        ("Transfer-Encoding", json!("chunked")),
        ("Connection", json!("close")),
        ("webhook-id", json!("msg_forged")),
        ("Webhook-Signature", json!("v1,forged")),
        ("webhook-timestamp", json!("0")),
        ("X-Hookrelay-Attempt", json!("1")),
        ("x-hookrelay-event-type", json!("forged")),
        ("X-Injected", json!("a\r\nHost: evil")),
        ("X-Lf", json!("a\nb")),
        ("X-Nul", json!("a\u{0}b")),
        ("Bad:Name", json!("x")),
        ("X-Number", json!(5)),
    ];
    for (name, value) in cases {
        let mut body = sample_webhook();
        body["headers"] = json!({ name: value.clone() });
        let r = app
            .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [format!("headers.{name}")], "create {name}");
        let r = app
            .call(
                Method::PATCH,
                &patch_path,
                Some(&t.key),
                Some(json!({"headers": { name: value }})),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [format!("headers.{name}")], "update {name}");
    }
    // More than 4 KiB in all.
    let mut body = sample_webhook();
    let v = "v".repeat(1024);
    body["headers"] = json!({"X-A": v, "X-B": v, "X-C": v, "X-D": v});
    let r = app
        .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["headers"]);
    // Not an object.
    let mut body = sample_webhook();
    body["headers"] = json!(["X-A: b"]);
    let r = app
        .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["headers"]);
    // Nothing was stored by any of these.
    let after = app.get(&t, &patch_path).await;
    assert_eq!(after["headers"], json!({}));
}
