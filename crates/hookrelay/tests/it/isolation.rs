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
