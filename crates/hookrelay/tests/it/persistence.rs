use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::helpers::*;

#[tokio::test]
async fn everything_survives_a_restart() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let tenants_before: Value = app
        .admin(Method::GET, "/api/v1/tenants", None)
        .await
        .json()
        .await
        .unwrap();
    let db = app.stop().await;

    let app = TestApp::spawn_in(db).await;
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
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.admin_key = None;
    let app = TestApp::spawn_with(db, config.clone()).await;
    // Our test key is not the admin key here.
    let r = app.admin(Method::GET, "/api/v1/tenants", None).await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let db = app.stop().await;
    let sql = "SELECT value FROM settings WHERE key = 'admin_key_sha256'";
    let value = db.bytes(sql).await;
    assert_eq!(value.len(), 32, "only a SHA-256 is stored");
    // A restart keeps the same hash rather than generating a new key.
    let app = TestApp::spawn_with(db, config).await;
    let db = app.stop().await;
    assert_eq!(db.bytes(sql).await, value);
}

#[tokio::test]
async fn a_second_process_on_the_same_sqlite_file_is_refused() {
    let app = spawn_app!();
    if backend() != Backend::Sqlite {
        // Several nodes on one PostgreSQL database is the supported way to scale.
        eprintln!("SKIPPED on PostgreSQL: the one-process lock guards SQLite files only");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["migrate", "--database-url", &app.db.url])
        .env_remove("HOOKRELAY_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a second process must not share the file"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another hookrelay process is using"),
        "{stderr}"
    );
    // Once the first stops, the file is free.
    let db = app.stop().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["migrate", "--database-url", &db.url])
        .env_remove("HOOKRELAY_ENCRYPTION_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
