//! OTLP trace export: the real binary, started with `HOOKRELAY_OTLP_ENDPOINT` pointing at a
//! stand-in collector, sends its request and delivery-attempt spans there over OTLP/HTTP.
//! (Without the setting nothing is exported: every other test runs that way.)

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::helpers::*;
use super::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(30);

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_configured_collector() {
    require_backend!();
    let collector = Receiver::start().await;
    let receiver = Receiver::start().await;
    let db = TestDb::create().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("HOOKRELAY_DATABASE_URL", &db.url)
        .env("HOOKRELAY_ADMIN_KEY", ADMIN_KEY)
        .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", LOOPBACK)
        .env("HOOKRELAY_OTLP_ENDPOINT", &collector.base)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if backend() == Backend::Postgres {
        command.env("HOOKRELAY_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY);
    }
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + WAIT;
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(std::time::Instant::now() < deadline, "server never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // One delivery, so there is an attempt span as well as request spans.
    let admin = |path: &str| client.post(format!("{base}{path}")).bearer_auth(ADMIN_KEY);
    let tenant: serde_json::Value = admin("/api/v1/tenants")
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let as_tenant = |path: &str| admin(path).header("x-tenant-id", tenant_id);
    let hook = json!({"name": "r", "url": receiver.url("/in"), "events": ["*"]});
    let r = as_tenant("/api/v1/webhooks")
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let event = json!({"type": "message.sent", "data": {}, "tenant_id": tenant_id});
    let r = as_tenant("/api/v1/events")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    receiver.wait_for("/in", 1, WAIT).await;

    // A graceful stop flushes the spans still buffered.
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = server.0.wait().unwrap();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");

    let exports = collector.wait_for("/v1/traces", 1, WAIT).await;
    assert_eq!(exports[0].header("content-type"), "application/x-protobuf");
    let bodies: Vec<u8> = exports.iter().flat_map(|hit| hit.body.to_vec()).collect();
    let has = |needle: &str| bodies.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("hookrelay"), "the service name");
    assert!(has("delivery.attempt"), "the attempt span");
    assert!(has("/api/v1/events"), "request spans, by route template");
}
