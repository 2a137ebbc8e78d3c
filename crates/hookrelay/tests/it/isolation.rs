//! Tenants never see each other: another tenant's object is a 404, exactly like a missing one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn another_tenants_webhook_is_not_found() {
    let app = spawn_app!();
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let hook_a = app.webhook(&a, sample_webhook()).await;
    let id = hook_a["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}");
    let missing = "/api/v1/webhooks/wh_01jdzzzzzzzzzzzzzzzzzzzzzz";

    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"name": "stolen"}))),
        (Method::DELETE, "", None),
        (Method::GET, "/secret", None),
    ] {
        let theirs = app
            .call(
                method.clone(),
                &format!("{path}{suffix}"),
                Some(&b.key),
                body.clone(),
            )
            .await;
        let theirs = problem(theirs, StatusCode::NOT_FOUND).await;
        let nothing = app
            .call(method, &format!("{missing}{suffix}"), Some(&b.key), body)
            .await;
        let nothing = problem(nothing, StatusCode::NOT_FOUND).await;
        assert_eq!(
            theirs, nothing,
            "a foreign id must look exactly like a missing one"
        );
    }
    // A's webhook is untouched.
    let got: Value = app
        .call(Method::GET, &path, Some(&a.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], hook_a["name"]);

    let list: Value = app
        .call(Method::GET, "/api/v1/webhooks", Some(&b.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
    // A cursor made from A's id pages nothing of A's into B's list.
    let list_a: Value = app
        .call(Method::GET, "/api/v1/webhooks?limit=1", Some(&a.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list_a["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_with_tenant_header_sees_exactly_that_tenant() {
    let app = spawn_app!();
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let hook_a = app.webhook(&a, sample_webhook()).await;
    let hook_b = app.webhook(&b, sample_webhook()).await;
    for (tenant, own, other) in [(&a, &hook_a, &hook_b), (&b, &hook_b, &hook_a)] {
        let list: Value = app
            .client
            .get(app.url("/api/v1/webhooks"))
            .bearer_auth(ADMIN_KEY)
            .header("X-Tenant-Id", &tenant.id)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [own["id"].as_str().unwrap()]);
        let r = app
            .client
            .get(app.url(&format!(
                "/api/v1/webhooks/{}",
                other["id"].as_str().unwrap()
            )))
            .bearer_auth(ADMIN_KEY)
            .header("X-Tenant-Id", &tenant.id)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::NOT_FOUND).await;
    }
    // The admin creates a webhook on B's behalf.
    let r = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .header("X-Tenant-Id", &b.id)
        .json(&sample_webhook())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["tenant_id"], b.id.as_str());
}

#[tokio::test]
async fn a_tenant_header_does_not_widen_a_tenant_key() {
    let app = spawn_app!();
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    app.webhook(&a, sample_webhook()).await;
    let list: Value = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(&b.key)
        .header("X-Tenant-Id", &a.id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
}

/// Tenant B's key against each of tenant A's ids, on every tenant route that takes one: each
/// answer is byte-for-byte the answer for an id that does not exist, and nothing of A's moves.
#[tokio::test]
async fn every_route_answers_a_foreign_id_exactly_like_a_missing_one() {
    use super::receiver::{Receiver, Reply};
    use std::time::Duration;

    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/a", |_| Reply::status(200));
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let hook = app
        .webhook(
            &a,
            json!({"name": "a", "url": rx.url("/a"), "events": ["*"]}),
        )
        .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let event = app
        .event(&a, json!({"type": "message.new", "data": {"x": 1}}))
        .await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let logs = app
        .eventually(
            &a,
            &format!("/api/v1/webhooks/{hook_id}/logs"),
            Duration::from_secs(10),
            |v| v["data"].as_array().is_some_and(|d| !d.is_empty()),
        )
        .await;
    let log_id = logs["data"][0]["id"].as_str().unwrap().to_owned();
    let detail = app.get(&a, &format!("/api/v1/events/{event_id}")).await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let since = hookrelay::domain::time::Timestamp::now()
        .plus_millis(-60_000)
        .to_rfc3339();
    let recovery = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{hook_id}/recover"),
            Some(&a.key),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(recovery.status(), StatusCode::ACCEPTED);
    let recovery: Value = recovery.json().await.unwrap();
    let recovery_id = recovery["id"].as_str().unwrap().to_owned();
    let before = app.get(&a, &format!("/api/v1/webhooks/{hook_id}")).await;
    let hits_before = rx.hits("/a").len();
    let missing_delivery = "dlv_01jdzzzzzzzzzzzzzzzzzzzzzz";
    let missing_recovery = "rcv_01jdzzzzzzzzzzzzzzzzzzzzzz";

    let missing_hook = "wh_01jdzzzzzzzzzzzzzzzzzzzzzz";
    let missing_log = "att_01jdzzzzzzzzzzzzzzzzzzzzzz";
    let missing_event = "evt_01jdzzzzzzzzzzzzzzzzzzzzzz";
    let routes: Vec<(Method, String, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/webhooks/{hook_id}"),
            format!("/webhooks/{missing_hook}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/webhooks/{hook_id}"),
            format!("/webhooks/{missing_hook}"),
            Some(json!({"name": "stolen"})),
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/secret"),
            format!("/webhooks/{missing_hook}/secret"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/rotate-secret"),
            format!("/webhooks/{missing_hook}/rotate-secret"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/test"),
            format!("/webhooks/{missing_hook}/test"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/logs"),
            format!("/webhooks/{missing_hook}/logs"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/logs/{log_id}"),
            format!("/webhooks/{missing_hook}/logs/{missing_log}"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/stats"),
            format!("/webhooks/{missing_hook}/stats"),
            None,
        ),
        (
            Method::GET,
            format!("/events/{event_id}"),
            format!("/events/{missing_event}"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/disable"),
            format!("/webhooks/{missing_hook}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/enable"),
            format!("/webhooks/{missing_hook}/enable"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/deliveries"),
            format!("/webhooks/{missing_hook}/deliveries"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/deliveries/{delivery_id}"),
            format!("/webhooks/{missing_hook}/deliveries/{missing_delivery}"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/deliveries/{delivery_id}/retry"),
            format!("/webhooks/{missing_hook}/deliveries/{missing_delivery}/retry"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/recover"),
            format!("/webhooks/{missing_hook}/recover"),
            Some(json!({"since": since})),
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/recoveries"),
            format!("/webhooks/{missing_hook}/recoveries"),
            None,
        ),
        (
            Method::GET,
            format!("/webhooks/{hook_id}/recoveries/{recovery_id}"),
            format!("/webhooks/{missing_hook}/recoveries/{missing_recovery}"),
            None,
        ),
        (
            Method::POST,
            format!("/webhooks/{hook_id}/recoveries/{recovery_id}/cancel"),
            format!("/webhooks/{missing_hook}/recoveries/{missing_recovery}/cancel"),
            None,
        ),
        (
            Method::POST,
            format!("/events/{event_id}/replay"),
            format!("/events/{missing_event}/replay"),
            None,
        ),
        (
            Method::DELETE,
            format!("/webhooks/{hook_id}"),
            format!("/webhooks/{missing_hook}"),
            None,
        ),
    ];
    for (method, theirs, missing, body) in routes {
        let answer = |path: String| {
            let (method, body) = (method.clone(), body.clone());
            let app = &app;
            let key = b.key.clone();
            async move {
                let r = app
                    .call(method, &format!("/api/v1{path}"), Some(&key), body)
                    .await;
                problem(r, StatusCode::NOT_FOUND).await
            }
        };
        let foreign = answer(theirs.clone()).await;
        let absent = answer(missing).await;
        assert_eq!(
            foreign, absent,
            "{method} {theirs}: a foreign id must look missing"
        );
    }
    // A's webhook, secret, logs and receiver are exactly as they were.
    let after = app.get(&a, &format!("/api/v1/webhooks/{hook_id}")).await;
    assert_eq!(after, before);
    assert_eq!(
        rx.hits("/a").len(),
        hits_before,
        "B's test send reached A's receiver"
    );
    let secret = app
        .get(&a, &format!("/api/v1/webhooks/{hook_id}/secret"))
        .await;
    assert_eq!(secret["secret"], hook["secret"]);
    assert!(secret["previous_secret"].is_null(), "{secret}");
}

/// A tenant key may name its own tenant in an event (one body for both kinds of key); naming
/// another is a 404, and in a batch only once every field is well formed.
#[tokio::test]
async fn an_event_naming_another_tenant_is_not_found() {
    let app = spawn_app!();
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let own = app
        .event(
            &a,
            json!({"type": "message.new", "data": {}, "tenant_id": a.id}),
        )
        .await;
    assert!(own["id"].as_str().unwrap().starts_with("evt_"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&a.key),
            Some(json!({"type": "message.new", "data": {}, "tenant_id": b.id})),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let batch = |events: Value| {
        app.call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&a.key),
            Some(json!({ "events": events })),
        )
    };
    let r = batch(json!([
        {"type": "message.new", "data": {}, "tenant_id": b.id},
        {"type": "message.new", "data": {}, "tenant_id": "nope"},
        {"type": "nope", "data": {}},
    ]))
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["events[1].tenant_id", "events[2].type"]);
    let r = batch(json!([
        {"type": "message.new", "data": {}},
        {"type": "message.new", "data": {}, "tenant_id": b.id},
    ]))
    .await;
    problem(r, StatusCode::NOT_FOUND).await;
}
