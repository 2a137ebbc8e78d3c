//! Server configuration, as resolved from flags and `HOOKRELAY_*` environment variables.

use std::fmt;
use std::net::SocketAddr;

use crate::delivery::DeliveryConfig;
use crate::domain::apikey::MIN_ADMIN_KEY_LEN;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://hookrelay.db";
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 10;
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;
/// A batch's body, when `max_batch_bytes` is not set: this many times the event limit
/// (4 MiB with the defaults).
pub const DEFAULT_BATCH_FACTOR: usize = 16;
pub const DEFAULT_MAX_WEBHOOKS_PER_TENANT: u32 = 100;
pub const DEFAULT_BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything `serve` needs. Built by the CLI, or directly by tests and embedders.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    /// PostgreSQL pool size.
    pub db_max_connections: u32,
    /// The operator keys sealing webhook secrets at rest.
    pub encryption: crate::keyring::KeySettings,
    /// `None`: use the generated admin key (generating it on the first start).
    pub admin_key: Option<SecretString>,
    /// Largest accepted request body on the management API.
    pub max_body_bytes: usize,
    /// Largest accepted event, on `POST /events` and inside `POST /events/batch` alike.
    pub max_event_bytes: usize,
    /// Largest accepted `POST /events/batch` body; `None`: `DEFAULT_BATCH_FACTOR` times
    /// `max_event_bytes`.
    pub max_batch_bytes: Option<usize>,
    /// API rate limits (per key, per client address, test sends).
    pub rate_limits: crate::api::limits::RateLimitConfig,
    /// Webhooks one tenant may have; 0: no limit.
    pub max_webhooks_per_tenant: u32,
    /// How long a request body may take to arrive: a client that declares more bytes than
    /// it sends gets a 408 instead of holding its connection forever.
    pub body_read_timeout: std::time::Duration,
    /// Deadlines and caps on connections (docs/security.md#connections).
    pub connections: crate::listener::ConnectionLimits,
    pub delivery: DeliveryConfig,
    /// Who may read `GET /metrics`.
    pub metrics_access: MetricsAccess,
    /// What is deleted when, and how gently.
    pub retention: crate::retention::RetentionConfig,
}

/// Who may read `GET /metrics` on the API listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MetricsAccess {
    /// Anyone who reaches the listener (as Prometheus usually scrapes).
    #[default]
    Public,
    /// Only with the admin key as a bearer token.
    Admin,
    /// Not served.
    Off,
}

impl ServeConfig {
    /// Defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            database_url: database_url.into(),
            db_max_connections: DEFAULT_DB_MAX_CONNECTIONS,
            encryption: crate::keyring::KeySettings::default(),
            admin_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: None,
            rate_limits: crate::api::limits::RateLimitConfig::default(),
            max_webhooks_per_tenant: DEFAULT_MAX_WEBHOOKS_PER_TENANT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            connections: crate::listener::ConnectionLimits::default(),
            delivery: DeliveryConfig::default(),
            metrics_access: MetricsAccess::default(),
            retention: crate::retention::RetentionConfig::default(),
        }
    }

    /// The limit of a whole batch body.
    pub fn batch_limit(&self) -> usize {
        self.max_batch_bytes
            .unwrap_or_else(|| self.max_event_bytes.saturating_mul(DEFAULT_BATCH_FACTOR))
    }

    /// Checks what types cannot; errors name the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(key) = &self.admin_key
            && key.expose().chars().count() < MIN_ADMIN_KEY_LEN
        {
            anyhow::bail!(
                "admin key (--admin-key / HOOKRELAY_ADMIN_KEY) must be at least {MIN_ADMIN_KEY_LEN} characters"
            );
        }
        if self.max_body_bytes < 1024 {
            anyhow::bail!(
                "max body bytes (--max-body-bytes / HOOKRELAY_MAX_BODY_BYTES) must be at least 1024"
            );
        }
        if self.batch_limit() < self.max_event_bytes {
            anyhow::bail!(
                "max batch bytes (--max-batch-bytes / HOOKRELAY_MAX_BATCH_BYTES) must be at least max event bytes (--max-event-bytes), or a batch could not carry one largest event"
            );
        }
        if self.body_read_timeout < std::time::Duration::from_secs(1) {
            anyhow::bail!(
                "body read timeout (--body-read-timeout / HOOKRELAY_BODY_READ_TIMEOUT) must be at least 1s"
            );
        }
        self.connections.validate()
    }
}

/// A string that never shows itself in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretString(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let c = ServeConfig {
            admin_key: Some(SecretString::new("super-secret-admin-key-0123456789")),
            ..ServeConfig::new("x.db")
        };
        assert!(!format!("{c:?}").contains("super-secret"));
    }

    #[test]
    fn short_admin_key_is_refused_by_name() {
        let c = ServeConfig {
            admin_key: Some(SecretString::new("short")),
            ..ServeConfig::new("x.db")
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("HOOKRELAY_ADMIN_KEY"), "{err}");
        assert!(ServeConfig::new("x.db").validate().is_ok());
    }
}
