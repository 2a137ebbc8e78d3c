use reqwest::{Method, StatusCode};
use serde_json::json;

use super::helpers::*;

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_401() {
    let app = spawn_app!();
    let tenant = app.tenant("Acme").await;
    let r = app.call(Method::GET, "/api/v1/webhooks", None, None).await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    problem(r, StatusCode::UNAUTHORIZED).await;

    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        &tenant.key,
        "Token abc",
    ] {
        let r = app
            .client
            .get(app.url("/api/v1/webhooks"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
    }
    // Right shape, wrong secret.
    let mut forged = tenant.key.clone();
    forged.pop();
    forged.push(if tenant.key.ends_with('a') { 'b' } else { 'a' });
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&forged), None)
        .await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some("not-a-key"), None)
        .await;
    problem(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn tenant_key_on_admin_routes_is_403() {
    let app = spawn_app!();
    let tenant = app.tenant("Acme").await;
    let key = Some(tenant.key.as_str());
    let keys = format!("/api/v1/tenants/{}/keys", tenant.id);
    let routes = [
        (
            Method::POST,
            "/api/v1/tenants".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/tenants".to_owned(), None),
        (Method::GET, format!("/api/v1/tenants/{}", tenant.id), None),
        (Method::POST, keys.clone(), Some(json!({}))),
        (Method::GET, keys.clone(), None),
        (Method::DELETE, format!("{keys}/{}", tenant.key_id), None),
    ];
    for (method, path, body) in routes {
        let r = app.call(method.clone(), &path, key, body).await;
        problem(r, StatusCode::FORBIDDEN).await;
    }
    // The key was not revoked by the refused DELETE.
    let r = app.call(Method::GET, "/api/v1/webhooks", key, None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_on_tenant_routes_needs_an_existing_tenant_header() {
    let app = spawn_app!();
    let r = app.admin(Method::GET, "/api/v1/webhooks", None).await;
    let body = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body), ["X-Tenant-Id"]);
    let r = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .header("x-tenant-id", "ten_01jdzzzzzzzzzzzzzzzzzzzzzz")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn expired_key_is_401() {
    let app = spawn_app!();
    let tenant = app.tenant("Acme").await;
    // Far enough ahead that a loaded machine still uses the key before it expires.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    let r = app
        .admin(
            Method::POST,
            &format!("/api/v1/tenants/{}/keys", tenant.id),
            Some(json!({"expires_at": soon.to_rfc3339()})),
        )
        .await;
    let key: serde_json::Value = r.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call(Method::GET, "/api/v1/webhooks", Some(&key), None)
            .await
            .status(),
        StatusCode::OK
    );
    // Waiting for a wall-clock expiry; not a timing assertion.
    let past = (soon - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(past + std::time::Duration::from_millis(100)).await;
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&key), None)
        .await;
    let body = problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"));
}
