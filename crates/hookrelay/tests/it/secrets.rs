//! Secrets at rest: no webhook secret and no API key is readable in the database; the key
//! file is private; rotating the operator key keeps every secret working.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::*;

/// Every byte the database keeps: for SQLite the files themselves (WAL included), for
/// PostgreSQL the text of every row of the tables that hold secrets and keys.
async fn everything_stored(db: &TestDb) -> Vec<u8> {
    match backend() {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.url)) {
                    all.extend(bytes);
                }
            }
            all
        }
        Backend::Postgres => {
            let mut text = String::new();
            for table in ["webhooks", "api_keys", "settings", "tenants"] {
                let sql: &'static str = match table {
                    "webhooks" => "SELECT CAST(t.* AS TEXT) FROM webhooks t",
                    "api_keys" => "SELECT CAST(t.* AS TEXT) FROM api_keys t",
                    "settings" => "SELECT CAST(t.* AS TEXT) FROM settings t",
                    _ => "SELECT CAST(t.* AS TEXT) FROM tenants t",
                };
                text.extend(db.strings(sql).await);
            }
            text.into_bytes()
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_secret_and_no_key_is_readable_in_the_database() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut body = sample_webhook();
    body["secret"] = json!(chosen);
    let with_chosen = app.webhook(&t, body).await;
    let mut with_headers = sample_webhook();
    with_headers["headers"] = json!({"Authorization": "Bearer hdr-credential-7Qx2"});
    let generated = app.webhook(&t, with_headers).await;
    assert_eq!(generated["headers"]["authorization"], "***");
    let read = format!(
        "/api/v1/webhooks/{}/headers",
        generated["id"].as_str().unwrap()
    );
    assert_eq!(
        app.get(&t, &read).await["headers"]["authorization"],
        "Bearer hdr-credential-7Qx2"
    );
    let generated = generated["secret"].as_str().unwrap().to_owned();
    // A PATCHed secret too.
    let patched = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=";
    let path = format!("/api/v1/webhooks/{}", with_chosen["id"].as_str().unwrap());
    app.call(
        Method::PATCH,
        &path,
        Some(&t.key),
        Some(json!({"secret": patched})),
    )
    .await;
    // Still served in full to their tenant.
    let revealed: Value = app.get(&t, &format!("{path}/secret")).await;
    assert_eq!(revealed["secret"], patched);
    // And a rotation: the previous secret is kept (sealed) beside the new one.
    let r = app
        .call(
            Method::POST,
            &format!("{path}/rotate-secret"),
            Some(&t.key),
            None,
        )
        .await;
    let rotated: Value = r.json().await.unwrap();
    assert_eq!(rotated["previous_secret"], patched);
    let rotated = rotated["secret"].as_str().unwrap().to_owned();

    let db = app.stop().await;
    let stored = everything_stored(&db).await;
    assert!(!stored.is_empty());
    let key_secret = t.key.rsplit('_').next().unwrap();
    for needle in [
        chosen,
        patched,
        rotated.as_str(),
        generated.as_str(),
        &generated["whsec_".len()..],
        t.key.as_str(),
        key_secret,
        ADMIN_KEY,
        // Custom headers often carry a receiver's credentials: sealed like secrets.
        "hdr-credential-7Qx2",
    ] {
        assert!(
            !contains(&stored, needle),
            "{needle} is readable in the database"
        );
    }
    assert!(contains(&stored, "enc:v1:"), "secrets are stored sealed");
}

#[tokio::test]
async fn the_sqlite_key_file_is_private_and_rotation_keeps_secrets_working() {
    require_backend!();
    if backend() != Backend::Sqlite {
        // PostgreSQL takes its key from the environment, which every test here uses.
        eprintln!("SKIPPED on PostgreSQL: the key file exists only beside a SQLite database");
        return;
    }
    let db = TestDb::create().await;
    let app = TestApp::spawn_in(db).await;
    let t = app.tenant("Acme").await;
    let mut body = sample_webhook();
    body["headers"] = json!({"X-Api-Token": "tok-123"});
    let hook = app.webhook(&t, body).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let db = app.stop().await;

    let key_file = format!("{}.key", db.url);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is for its owner only");
    }
    let before = std::fs::read_to_string(&key_file).unwrap();
    let sealed_before = db.strings("SELECT secret FROM webhooks").await;

    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["rotate-encryption-key", "--database-url", &db.url])
        .env_remove("HOOKRELAY_ENCRYPTION_KEY")
        .env_remove("HOOKRELAY_OLD_ENCRYPTION_KEYS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sealed 1 webhook secrets"));
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(before, after, "a new key replaced the old one");
    let sealed_after = db.strings("SELECT secret FROM webhooks").await;
    assert_ne!(sealed_before, sealed_after);

    let sealed_headers_after = db.strings("SELECT headers FROM webhooks").await;
    assert!(sealed_headers_after[0].starts_with("enc:v1:"));

    let app = TestApp::spawn_in(db).await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    assert_eq!(
        app.get(&t, &format!("{path}/secret")).await["secret"],
        secret.as_str()
    );
    // The custom headers were sealed again with the new key, and still open.
    assert_eq!(
        app.get(&t, &format!("{path}/headers")).await["headers"]["x-api-token"],
        "tok-123"
    );
}

#[tokio::test]
async fn rotating_a_secret_signs_with_both_until_the_grace_period_ends() {
    use super::receiver::Receiver;
    use std::time::Duration;

    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    let hook = app
        .webhook(
            &t,
            json!({"name": "r", "url": rx.url("/in"), "events": ["*"]}),
        )
        .await;
    let old = hook["secret"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());

    let r = app
        .call(
            Method::POST,
            &format!("{base}/rotate-secret"),
            Some(&t.key),
            Some(json!({"grace_period": 2})),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(rotated["previous_secret"], old.as_str());
    assert!(rotated["previous_secret_expires_at"].is_string());
    assert_eq!(app.get(&t, &format!("{base}/secret")).await, rotated);

    let verify = |hit: &super::receiver::Hit, secret: &str| {
        let headers: Vec<(&str, &str)> = hit
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let secret = hookrelay_verify::Secret::parse(secret).unwrap();
        hookrelay_verify::verify(
            &secret,
            &headers[..],
            &hit.body,
            hookrelay_verify::DEFAULT_TOLERANCE,
        )
        .is_ok()
    };
    app.event(&t, json!({"type": "message.new", "data": {"n": 1}}))
        .await;
    let hit = rx
        .wait_for("/in", 1, Duration::from_secs(20))
        .await
        .remove(0);
    assert_eq!(
        hit.header("webhook-signature").split(' ').count(),
        2,
        "both signatures during the grace period"
    );
    assert!(
        verify(&hit, &new) && verify(&hit, &old),
        "receivers with either secret verify"
    );

    // After the grace period: the new secret only.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    app.event(&t, json!({"type": "message.new", "data": {"n": 2}}))
        .await;
    let hit = rx
        .wait_for("/in", 2, Duration::from_secs(20))
        .await
        .remove(1);
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 1);
    assert!(verify(&hit, &new) && !verify(&hit, &old));
    let shown = app.get(&t, &format!("{base}/secret")).await;
    assert!(shown.get("previous_secret").is_none(), "{shown}");

    // A chosen secret with no grace: the old one stops at once. No body at all: defaults.
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let r = app
        .call(
            Method::POST,
            &format!("{base}/rotate-secret"),
            Some(&t.key),
            Some(json!({"secret": chosen, "grace_period": "0s"})),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"secret": chosen}));
    let r = app
        .client
        .post(app.url(&format!("{base}/rotate-secret")))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["previous_secret"], chosen);

    for (bad, field) in [
        (json!({"grace_period": "8d"}), "grace_period"),
        (json!({"secret": "plain"}), "secret"),
        (json!({"grace": 1}), "grace"),
    ] {
        let r = app
            .call(
                Method::POST,
                &format!("{base}/rotate-secret"),
                Some(&t.key),
                Some(bad),
            )
            .await;
        assert_eq!(
            fields(&problem(r, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
    let other = app.tenant("Other").await;
    let r = app
        .call(
            Method::POST,
            &format!("{base}/rotate-secret"),
            Some(&other.key),
            None,
        )
        .await;
    problem(r, reqwest::StatusCode::NOT_FOUND).await;
}
