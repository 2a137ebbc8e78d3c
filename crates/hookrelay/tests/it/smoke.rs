//! `scripts/smoke.sh`, the end-to-end script operators run against a server, run here against
//! a freshly started one so that `cargo test` (and so CI) keeps it working.

use std::process::Command;

use super::helpers::ADMIN_KEY;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/smoke.sh");

/// bash, curl and jq, or a loud skip (`.ci/run` installs curl and jq).
pub fn tools_present() -> bool {
    let missing: Vec<&str> = ["bash", "curl", "jq"]
        .into_iter()
        .filter(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    // Skipped loudly, or a failure where CI requires its tools.
    super::examples::available(
        &format!(
            "{} (for scripts/smoke.sh and docs/cli.md)",
            missing.join(", ")
        ),
        missing.is_empty(),
        ".ci/run installs them: apt-get install curl jq",
    )
}

async fn smoke(base: &str, admin_key: &str) -> (bool, String) {
    let output = tokio::process::Command::new("bash")
        .arg(SCRIPT)
        .arg(base)
        .env("HOOKRELAY_ADMIN_KEY", admin_key)
        .env("HOOKRELAY_BIN", env!("CARGO_BIN_EXE_hookrelay"))
        .output()
        .await
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_script_passes_against_a_fresh_server() {
    if !tools_present() {
        return;
    }
    let app = spawn_app!();
    let (ok, out) = smoke(&app.base, ADMIN_KEY).await;
    assert!(ok, "smoke.sh failed:\n{out}");
    assert!(!out.contains("FAIL"), "{out}");
    for step in [
        "PASS POST /tenants\n",
        "PASS POST /webhooks\n",
        "PASS POST /webhooks/{id}/test\n",
        "PASS event received and verified by hookrelay listen\n",
        "PASS GET /webhooks/{id}/stats\n",
        "PASS GET /webhooks/{id}/deliveries\n",
        "PASS replay received with the event's webhook-id\n",
        "PASS GET /webhooks/{id}/recoveries/{recovery_id}\n",
        "PASS a revoked key is 401\n",
    ] {
        assert!(out.contains(step), "no {step:?} in:\n{out}");
    }
    // It cleaned up: no webhook left, its key revoked.
    let tenants = app
        .admin(reqwest::Method::GET, "/api/v1/tenants?limit=200", None)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let tenant = tenants["data"][0]["id"].as_str().unwrap().to_owned();
    let keys = app
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/tenants/{tenant}/keys"),
            None,
        )
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_string()),
        "{keys}"
    );
    let webhooks: serde_json::Value = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .header("x-tenant-id", &tenant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(webhooks["data"], serde_json::json!([]), "{webhooks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_script_fails_loudly() {
    if !tools_present() {
        return;
    }
    let app = spawn_app!();
    let (ok, out) = smoke(&app.base, "not-the-admin-key-0123456789abcdefghij").await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL POST /tenants: HTTP 401, expected 201"),
        "{out}"
    );
}
