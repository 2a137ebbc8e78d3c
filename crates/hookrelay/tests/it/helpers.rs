//! `TestApp`: one running server with its own database, and small conveniences for calling it.

use std::path::PathBuf;
use std::time::Duration;

use hookrelay::ServeConfig;
use hookrelay::config::SecretString;
use hookrelay::domain::retry::RetryPolicy;
use hookrelay::domain::target::TargetPolicy;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Stops the server when a test ends without calling `stop`.
    _guard: DropGuard,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_in(tempfile::tempdir().expect("temp dir")).await
    }

    /// Starts a server on the database inside `dir` (created there if new).
    pub async fn spawn_in(dir: TempDir) -> TestApp {
        let config = test_config(&dir);
        Self::spawn_with(dir, config).await
    }

    pub async fn spawn_with(dir: TempDir, config: ServeConfig) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(hookrelay::run(config, listener, shutdown.clone()));
        let app = TestApp {
            base,
            client: reqwest::Client::new(),
            dir,
            _guard: shutdown.clone().drop_guard(),
            shutdown,
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server at {} never became ready", self.base);
    }

    /// Stops the server gracefully and hands back its directory, database included.
    pub async fn stop(mut self) -> TempDir {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with an optional bearer key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call(method, path, Some(ADMIN_KEY), body).await
    }

    /// Creates a tenant and a key for it.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let r = self
            .admin(Method::POST, "/api/v1/tenants", Some(json!({"name": name})))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let tenant: Value = r.json().await.expect("json");
        let id = tenant["id"].as_str().expect("id").to_owned();
        let r = self
            .admin(
                Method::POST,
                &format!("/api/v1/tenants/{id}/keys"),
                Some(json!({"name": "test"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let key: Value = r.json().await.expect("json");
        Tenant {
            id,
            key: key["key"].as_str().expect("key").to_owned(),
            key_id: key["id"].as_str().expect("key id").to_owned(),
        }
    }

    /// Posts an event as `tenant`; returns the answer's JSON.
    pub async fn event(&self, tenant: &Tenant, body: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/events",
                Some(&tenant.key),
                Some(body),
            )
            .await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status}: {json}"
        );
        json
    }

    /// GET as `tenant`, answer as JSON after checking for 200.
    pub async fn get(&self, tenant: &Tenant, path: &str) -> Value {
        let r = self.call(Method::GET, path, Some(&tenant.key), None).await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        json
    }

    /// Waits until `check` holds for the JSON at `path`; panics after `limit`.
    pub async fn eventually(
        &self,
        tenant: &Tenant,
        path: &str,
        limit: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let value = self.get(tenant, path).await;
            if check(&value) {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never reached the expected state: {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a webhook for `tenant` and returns its JSON.
    pub async fn webhook(&self, tenant: &Tenant, body: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&tenant.key),
                Some(body),
            )
            .await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }
}

pub struct Tenant {
    pub id: String,
    pub key: String,
    pub key_id: String,
}

/// The configuration tests run with: our admin key, and retries fast enough to watch
/// (200 ms, 400 ms, 800 ms …, no jitter).
pub fn test_config(dir: &TempDir) -> ServeConfig {
    let mut config = ServeConfig::new(db_path(dir).display().to_string());
    config.admin_key = Some(SecretString::new(ADMIN_KEY));
    config.delivery.retry = RetryPolicy {
        base: Duration::from_millis(200),
        factor: 2.0,
        max_delay: Duration::from_secs(5),
        jitter: 0.0,
    };
    config.delivery.poll_interval = Duration::from_millis(250);
    config.delivery.shutdown_grace = Duration::from_secs(5);
    // The receivers live on loopback, which production refuses by default.
    config.delivery.targets =
        std::sync::Arc::new(TargetPolicy::parse(LOOPBACK).expect("valid CIDR"));
    config
}

pub const LOOPBACK: &str = "127.0.0.0/8";

pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("hookrelay.db")
}

pub fn sample_webhook() -> Value {
    json!({
        "name": "CRM sync",
        "url": "https://example.com/hooks/crm",
        "events": ["message.sent", "contact.created"]
    })
}

/// Reads a problem answer, checking it is one.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = r.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The fields a 422 names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
