//! Operational webhooks: the operator's endpoints for hookrelay's own events, delivered by
//! the same engine (signed, retried, logged) as the system tenant's webhooks; tenants never
//! reach them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Hit, Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);
const SYSTEM_TENANT: &str = "ten_00000000000000000000000000";

async fn operational_webhook(app: &TestApp, url: String, events: Value) -> Value {
    let r = app
        .admin(
            Method::POST,
            "/api/v1/operational-webhooks",
            Some(json!({"name": "ops", "url": url, "events": events})),
        )
        .await;
    let status = r.status();
    let w: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{w}");
    w
}

fn verify(secret: &str, hit: &Hit) {
    let secret = hookrelay_verify::Secret::parse(secret).unwrap();
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
    .expect("the operational delivery verifies");
}

#[tokio::test]
async fn gone_sends_a_signed_webhook_disabled_to_the_operator() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/gone", |_| Reply::status(410));
    let ops = operational_webhook(&app, rx.url("/ops"), json!(["webhook.disabled"])).await;
    assert_eq!(ops["tenant_id"], SYSTEM_TENANT);
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/gone"), "events": ["message.sent"]}),
        )
        .await;
    app.event(&t, json!({"type": "message.sent", "data": {}}))
        .await;
    let hits = rx.wait_for("/ops", 1, WAIT).await;
    let hit = &hits[0];
    verify(ops["secret"].as_str().unwrap(), hit);
    assert_eq!(hit.header("x-hookrelay-event-type"), "webhook.disabled");
    let body = hit.json();
    assert_eq!(body["type"], "webhook.disabled");
    assert_eq!(body["tenant_id"], SYSTEM_TENANT);
    assert_eq!(body["data"]["tenant_id"], t.id.as_str());
    assert_eq!(body["data"]["webhook_id"], w["id"]);
    assert_eq!(body["data"]["disabled_reason"], "gone");
    assert_eq!(body["data"]["status"], "disabled");
    assert_eq!(rx.hits("/gone").len(), 1);
    // The operator's delivery is logged like any other.
    let path = format!(
        "/api/v1/operational-webhooks/{}",
        ops["id"].as_str().unwrap()
    );
    let r = app.admin(Method::GET, &path, None).await;
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["events"], json!(["webhook.disabled"]));
}

#[tokio::test]
async fn an_exhausted_delivery_is_told_to_the_operator() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/down", |_| Reply::status(500));
    let ops = operational_webhook(&app, rx.url("/ops"), json!(["delivery.exhausted"])).await;
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/down"), "events": ["message.sent"], "retry_count": 1}),
        )
        .await;
    let accepted = app
        .event(&t, json!({"type": "message.sent", "data": {}}))
        .await;
    let hits = rx.wait_for("/ops", 1, WAIT).await;
    verify(ops["secret"].as_str().unwrap(), &hits[0]);
    let body = hits[0].json();
    assert_eq!(body["type"], "delivery.exhausted");
    assert_eq!(body["data"]["tenant_id"], t.id.as_str());
    assert_eq!(body["data"]["webhook_id"], w["id"]);
    assert_eq!(body["data"]["event_id"], accepted["id"]);
    assert_eq!(body["data"]["event_type"], "message.sent");
    assert_eq!(body["data"]["attempts"], 2);
    assert_eq!(body["data"]["last_status"], 500);
    assert_eq!(rx.hits("/down").len(), 2);
}

#[tokio::test]
async fn tenants_cannot_see_or_use_operational_webhooks_or_the_system_tenant() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let ops = operational_webhook(&app, rx.url("/ops"), json!(["*"])).await;
    let ops_path = format!(
        "/api/v1/operational-webhooks/{}",
        ops["id"].as_str().unwrap()
    );
    let t = app.tenant("Acme").await;
    for (method, path) in [
        (Method::GET, "/api/v1/operational-webhooks".to_owned()),
        (
            Method::GET,
            "/api/v1/operational-webhooks/events".to_owned(),
        ),
        (Method::GET, ops_path.clone()),
        (Method::DELETE, ops_path.clone()),
        (Method::POST, format!("{ops_path}/enable")),
    ] {
        let r = app.call(method, &path, Some(&t.key), None).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // The operational webhook is no tenant's webhook, not even with the tenant's own routes.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{}", ops["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The system tenant is nobody's to act as, list or give keys to.
    let r = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .header("X-Tenant-Id", SYSTEM_TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for (method, path) in [
        (Method::GET, format!("/api/v1/tenants/{SYSTEM_TENANT}")),
        (
            Method::POST,
            format!("/api/v1/tenants/{SYSTEM_TENANT}/keys"),
        ),
    ] {
        let r = app.admin(method, &path, Some(json!({"name": "x"}))).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = app
        .admin(Method::GET, "/api/v1/tenants?limit=200", None)
        .await;
    let tenants: Value = r.json().await.unwrap();
    assert!(
        tenants["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != SYSTEM_TENANT)
    );
    let r = app
        .admin(
            Method::POST,
            "/api/v1/events",
            Some(json!({"type": "message.sent", "data": {}, "tenant_id": SYSTEM_TENANT})),
        )
        .await;
    // As for a tenant that does not exist.
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["tenant_id"]);
    // Tenant webhooks cannot subscribe to operational events, nor the reverse.
    let r = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&t.key),
            Some(json!({"name": "x", "url": rx.url("/x"), "events": ["webhook.disabled"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["events[0]"]);
    let r = app
        .admin(
            Method::POST,
            "/api/v1/operational-webhooks",
            Some(json!({"name": "x", "url": rx.url("/x"), "events": ["message.sent"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["events[0]"]);
    // The operator's catalogue lists the operational types, the tenants' does not.
    let r = app
        .admin(Method::GET, "/api/v1/operational-webhooks/events", None)
        .await;
    let catalogue: Value = r.json().await.unwrap();
    let names: Vec<&str> = catalogue["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "webhook.failing",
            "webhook.disabled",
            "webhook.recovered",
            "delivery.exhausted",
            "recovery.completed",
            "*"
        ]
    );
    let tenant_catalogue = app.get(&t, "/api/v1/webhooks/events").await;
    assert!(
        tenant_catalogue["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["name"].as_str().unwrap().starts_with("webhook."))
    );
    // Same validation and SSRF guard as tenant webhooks.
    let r = app
        .admin(
            Method::POST,
            "/api/v1/operational-webhooks",
            Some(json!({"name": "x", "url": "http://169.254.169.254/", "events": ["*"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["url"]);
}
