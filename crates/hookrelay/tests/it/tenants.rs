use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;

#[tokio::test]
async fn tenant_create_get_list() {
    let app = spawn_app!();
    let r = app
        .admin(
            Method::POST,
            "/api/v1/tenants",
            Some(json!({"name": "  Acme Ltd "})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("ten_"));
    assert_eq!(created["name"], "Acme Ltd");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["created_at"], created["updated_at"]);

    let got: Value = app
        .admin(Method::GET, &format!("/api/v1/tenants/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    let list: Value = app
        .admin(Method::GET, "/api/v1/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0], created);
    assert!(list["next_cursor"].is_null());

    let missing = app
        .admin(
            Method::GET,
            "/api/v1/tenants/ten_01jdzzzzzzzzzzzzzzzzzzzzzz",
            None,
        )
        .await;
    problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn tenant_list_paginates_newest_first() {
    let app = spawn_app!();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = app
            .admin(
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": format!("t{i}")})),
            )
            .await;
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/api/v1/tenants?limit=2".to_owned();
    loop {
        let page: Value = app
            .admin(Method::GET, &path, None)
            .await
            .json()
            .await
            .unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/tenants?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn keys_are_shown_once_listed_by_prefix_and_revoked_at_once() {
    let app = spawn_app!();
    let tenant = app.tenant("Acme").await;
    // The key works.
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&tenant.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let path = format!("/api/v1/tenants/{}/keys", tenant.id);
    let r = app
        .admin(
            Method::POST,
            &path,
            Some(json!({"name": "ci", "expires_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Value = r.json().await.unwrap();
    let key = second["key"].as_str().unwrap();
    assert!(key.starts_with(second["prefix"].as_str().unwrap()));
    assert!(key.starts_with("hr_"));
    assert_eq!(second["name"], "ci");
    assert_eq!(second["expires_at"], "2999-01-01T00:00:00.000Z");
    assert_eq!(second["tenant_id"], tenant.id.as_str());
    assert!(second["revoked_at"].is_null());

    let list: Value = app
        .admin(Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    let keys = list["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for k in keys {
        assert!(k.get("key").is_none(), "a listed key carries the key: {k}");
        assert!(k.get("key_hash").is_none());
        assert!(k["prefix"].as_str().unwrap().starts_with("hr_"));
    }
    assert!(!list.to_string().contains(key));

    let r = app
        .admin(Method::DELETE, &format!("{path}/{}", tenant.key_id), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&tenant.key), None)
        .await;
    let body = problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
    // The other key still works.
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let list: Value = app
        .admin(Method::GET, &path, None)
        .await
        .json()
        .await
        .unwrap();
    let revoked = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == tenant.key_id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string());

    let r = app
        .admin(
            Method::DELETE,
            &format!("{path}/key_01jdzzzzzzzzzzzzzzzzzzzzzz"),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn key_for_missing_tenant_is_404() {
    let app = spawn_app!();
    let r = app
        .admin(
            Method::POST,
            "/api/v1/tenants/ten_01jdzzzzzzzzzzzzzzzzzzzzzz/keys",
            Some(json!({})),
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
}
