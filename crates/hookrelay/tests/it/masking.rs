//! Custom header values are a receiver's credentials: every webhook answer masks them, and
//! only `GET /webhooks/{id}/headers` reads them back, as `GET /webhooks/{id}/secret` does the
//! secret.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::Receiver;

#[tokio::test]
async fn header_values_are_masked_everywhere_and_read_on_their_own_route() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("t").await;
    let other = app.tenant("other").await;
    let created = app
        .webhook(
            &t,
            json!({"name": "gw", "url": rx.url("/in"), "events": ["*"],
                   "headers": {"Authorization": "Bearer gw-7Qx2-credential", "X-Team": "crm"}}),
        )
        .await;
    let masked = json!({"authorization": "***", "x-team": "***"});
    assert_eq!(created["headers"], masked, "create answer");
    let id = created["id"].as_str().unwrap();
    let one = format!("/api/v1/webhooks/{id}");
    assert_eq!(app.get(&t, &one).await["headers"], masked, "get");
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"][0]["headers"], masked, "list");
    let r = app
        .call(
            Method::PATCH,
            &one,
            Some(&t.key),
            Some(json!({"name": "gw2"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["headers"], masked, "update answer");
    for answer in [&created, &patched, &list] {
        assert!(!answer.to_string().contains("gw-7Qx2"), "{answer}");
    }

    // The explicit route reads them, in order, for the owner only.
    let headers = format!("/api/v1/webhooks/{id}/headers");
    let got = app.get(&t, &headers).await;
    assert_eq!(
        got,
        json!({"headers": {"authorization": "Bearer gw-7Qx2-credential", "x-team": "crm"}})
    );
    let r = app
        .call(Method::GET, &headers, Some(&other.key), None)
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    let r = app.call(Method::GET, &headers, None, None).await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let r = app.call(Method::GET, &headers, Some(ADMIN_KEY), None).await;
    // The admin names the tenant, as on every tenant route.
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = app
        .client
        .get(app.url(&headers))
        .bearer_auth(ADMIN_KEY)
        .header("x-tenant-id", &t.id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Deliveries still carry the real values.
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let hits = rx.wait_for("/in", 1, Duration::from_secs(10)).await;
    assert_eq!(hits[0].header("authorization"), "Bearer gw-7Qx2-credential");

    // Sending the mask back as it was shown is refused, not stored over the credential.
    let r = app
        .call(
            Method::PATCH,
            &one,
            Some(&t.key),
            Some(json!({"headers": patched["headers"]})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["headers.authorization", "headers.x-team"]);
    assert_eq!(
        app.get(&t, &headers).await["headers"]["authorization"],
        "Bearer gw-7Qx2-credential"
    );
}
