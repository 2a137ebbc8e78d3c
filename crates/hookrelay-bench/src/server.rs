//! One hookrelay server (node) inside this process, on a database the phase created, and the
//! real HTTP API calls that prepare it for a phase.

use std::time::{Duration, Instant};

use anyhow::Context;
use hookrelay::ServeConfig;
use hookrelay::config::SecretString;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The admin key the bench configures (as `HOOKRELAY_ADMIN_KEY` would).
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef0123456789";

/// The key sealing webhook secrets (as `HOOKRELAY_ENCRYPTION_KEY` would): base64 of 32 bytes.
/// PostgreSQL requires one, the same on every node.
pub const ENCRYPTION_KEY: &str = "aG9va3JlbGF5LWJlbmNoLXNlYWxpbmcta2V5LTAwMDE=";

/// How long the server may take to answer `/readyz`, and to stop.
const START_LIMIT: Duration = Duration::from_secs(10);
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// A running server. The database is the phase's: it outlives every server on it.
pub struct Server {
    pub base: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// A server dropped without [`Server::stop`] (the phase failed) is told to stop anyway.
    _stop_on_drop: DropGuard,
}

impl Server {
    /// Starts a server on 127.0.0.1 (free port) on the database at `database_url` (a SQLite
    /// file path or a PostgreSQL URL; several servers may share a PostgreSQL database).
    /// Configuration is the server's default (SQLite: WAL, `synchronous=FULL`; default
    /// delivery settings) plus a fixed admin key and secret-sealing key, the PostgreSQL pool
    /// size `db_max_connections`, and a short shutdown grace, so a phase ends promptly.
    pub async fn start(
        database_url: &str,
        db_max_connections: u32,
        api_limits: bool,
        client: &reqwest::Client,
    ) -> anyhow::Result<Server> {
        let mut config = ServeConfig::new(database_url);
        config.db_max_connections = db_max_connections;
        config.admin_key = Some(SecretString::new(ADMIN_KEY));
        config.encryption.key = Some(SecretString::new(ENCRYPTION_KEY));
        config.delivery.shutdown_grace = Duration::from_secs(5);
        // The load comes from one address with one key: the limits are off to measure the
        // engine, or on but far above the load to measure what counting costs.
        let limit = if api_limits { 100_000_000 } else { 0 };
        config.rate_limits = hookrelay::config::RateLimitConfig {
            per_key: limit,
            per_ip: limit,
            auth_failures_per_minute: limit,
            test_sends_per_minute: 0,
            client_ip_header: None,
        };
        // The receiver is on loopback, which hookrelay refuses unless the operator allows it.
        config.delivery.targets = std::sync::Arc::new(
            hookrelay::domain::egress::EgressPolicy::parse("127.0.0.0/8")
                .map_err(anyhow::Error::msg)?,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(hookrelay::run(config, listener, shutdown.clone()));
        let mut server = Server {
            base,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            task,
        };
        // On failure the server is dropped, which tells it to stop.
        if let Err(error) = server.wait_ready(client).await {
            if server.task.is_finished()
                && let Ok(Err(cause)) = (&mut server.task).await
            {
                return Err(cause.context("the server stopped while starting"));
            }
            return Err(error);
        }
        Ok(server)
    }

    async fn wait_ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if self.task.is_finished() {
                anyhow::bail!("the server stopped while starting");
            }
            if let Ok(r) = client.get(self.url("/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "the server at {} was not ready within {START_LIMIT:?}",
                    self.base
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully: in-flight attempts finish, queued work is handed back to
    /// the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(STOP_LIMIT, self.task)
            .await
            .with_context(|| format!("the server did not stop within {STOP_LIMIT:?}"))?;
        stopped.context("server task")??;
        Ok(())
    }
}

/// Sets up what a phase needs through the HTTP API of the server at `base`: a tenant and its key (as the operator),
/// then `urls.len()` webhooks subscribed to every event (as the tenant). Returns the tenant key.
pub async fn setup(
    client: &reqwest::Client,
    base: &str,
    urls: &[String],
) -> anyhow::Result<String> {
    let tenant = created(
        client
            .post(format!("{base}/api/v1/tenants"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "Bench Clinic"})),
        "create the tenant",
    )
    .await?;
    let tenant_id = string_field(&tenant, "id")?;
    let key = created(
        client
            .post(format!("{base}/api/v1/tenants/{tenant_id}/keys"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"name": "bench"})),
        "create the tenant key",
    )
    .await?;
    let key = string_field(&key, "key")?;
    for (i, url) in urls.iter().enumerate() {
        created(
            client
                .post(format!("{base}/api/v1/webhooks"))
                .bearer_auth(&key)
                .json(&json!({"name": format!("bench receiver {i}"), "url": url, "events": ["*"]})),
            "create a webhook",
        )
        .await?;
    }
    Ok(key)
}

/// Sends `request`, insisting on 201 Created; returns the answer's JSON.
async fn created(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{what}: request failed"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if status != StatusCode::CREATED {
        anyhow::bail!("{what}: expected 201, got {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: answer is not JSON: {text}"))
}

fn string_field(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("answer has no string {field:?}: {value}"))
}
