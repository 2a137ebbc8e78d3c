use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn everything_survives_a_restart() {
    let app = TestApp::spawn().await;
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let tenants_before: Value = app
        .admin(Method::GET, "/api/v1/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir).await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/secret"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the tenant key still works");
    assert_eq!(
        r.json::<Value>().await.unwrap()["secret"],
        created["secret"]
    );
    let got: Value = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}"),
            Some(&t.key),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "name",
        "url",
        "events",
        "created_at",
        "updated_at",
        "retry_count",
    ] {
        assert_eq!(got[field], created[field]);
    }
    let tenants_after: Value = app
        .admin(Method::GET, "/api/v1/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tenants_before, tenants_after);
}

#[tokio::test]
async fn generated_admin_key_is_stored_as_a_hash_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = hookrelay::ServeConfig::new(db_path(&dir).display().to_string());
    let app = TestApp::spawn_with(dir, config.clone()).await;
    // Our test key is not the admin key here.
    let r = app.admin(Method::GET, "/api/v1/tenants", None).await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let dir = app.stop().await;
    let url = format!("sqlite://{}", db_path(&dir).display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (value,): (Vec<u8>,) =
        sqlx::query_as("SELECT value FROM settings WHERE key = 'admin_key_sha256'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(value.len(), 32, "only a SHA-256 is stored");
    // A restart keeps the same hash rather than generating a new key.
    let app = TestApp::spawn_with(dir, config).await;
    let dir = app.stop().await;
    let url = format!("sqlite://{}", db_path(&dir).display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let (again,): (Vec<u8>,) =
        sqlx::query_as("SELECT value FROM settings WHERE key = 'admin_key_sha256'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(value, again);
}
