//! Server configuration, as resolved from flags and `HOOKRELAY_*` environment variables.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::delivery::DeliveryConfig;
use crate::domain::apikey::MIN_ADMIN_KEY_LEN;
use crate::domain::retry::BadRetryPolicy;

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
    pub encryption: KeySettings,
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
    pub rate_limits: RateLimitConfig,
    /// Webhooks one tenant may have; 0: no limit.
    pub max_webhooks_per_tenant: u32,
    /// How long a request body may take to arrive: a client that declares more bytes than
    /// it sends gets a 408 instead of holding its connection forever.
    pub body_read_timeout: std::time::Duration,
    /// Deadlines and caps on connections (docs/security.md#connections).
    pub connections: ConnectionLimits,
    pub delivery: DeliveryConfig,
    /// Who may read `GET /metrics`.
    pub metrics_access: MetricsAccess,
    /// What is deleted when, and how gently.
    pub retention: crate::retention::RetentionConfig,
    /// Deliveries a recovery re-queues per second for a webhook without a rate limit.
    pub recovery_pace: u32,
}

/// The limits, as configured. Zero switches one off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// API requests per second for one tenant key (the admin key is the operator's, unlimited).
    pub per_key: u32,
    /// API requests per second from one client address, every key and none included.
    pub per_ip: u32,
    /// Failed authentications (answers 401) per minute from one client address; past it, every
    /// API request from that address answers 429 until the allowance refills, so a guess is
    /// refused before it is checked.
    pub auth_failures_per_minute: u32,
    /// `POST /webhooks/{id}/test` per minute for one webhook (enforced by the service).
    pub test_sends_per_minute: u32,
    /// A header set by the operator's reverse proxy naming the client (`x-forwarded-for`,
    /// `x-real-ip`): its last address is used. Unset: the connection's peer address.
    pub client_ip_header: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_key: 0,
            per_ip: 0,
            auth_failures_per_minute: 60,
            test_sends_per_minute: 5,
            client_ip_header: None,
        }
    }
}

/// The operator keys as configured (`keyring` turns them into a keyring).
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    /// Base64 of 32 bytes; seals new secrets.
    pub key: Option<SecretString>,
    /// Comma-separated older keys, still accepted for opening.
    pub old_keys: Option<SecretString>,
}

/// hyper's HTTP/1 buffer cannot be smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

/// The connection limits, as configured (see docs/security.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must be complete this long after the connection opens, or after its
    /// first byte on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Connections open at once; lowered at start if the open-file limit is too low for it.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64); 0: no limit.
    pub max_connections_per_ip: usize,
    /// Largest request head (request line and headers; HTTP/2: the header list), in bytes.
    pub max_header_bytes: usize,
    /// Requests in flight at once on one HTTP/2 connection.
    pub http2_max_streams: u32,
    /// HTTP/2 streams a client may open and reset before the server has seen them, before
    /// it is hung up on (the rapid-reset attack, CVE-2023-44487).
    pub http2_max_pending_resets: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_ip: 1024,
            max_header_bytes: 64 * 1024,
            http2_max_streams: 100,
            http2_max_pending_resets: 20,
        }
    }
}

impl ConnectionLimits {
    /// Checks what types cannot; errors name the setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.header_read_timeout < Duration::from_millis(100) {
            anyhow::bail!(
                "header read timeout (--header-read-timeout / HOOKRELAY_HEADER_READ_TIMEOUT) must be at least 100ms"
            );
        }
        if self.idle_timeout < Duration::from_millis(100) {
            anyhow::bail!(
                "idle timeout (--idle-timeout / HOOKRELAY_IDLE_TIMEOUT) must be at least 100ms"
            );
        }
        if self.max_connections == 0 {
            anyhow::bail!(
                "max connections (--max-connections / HOOKRELAY_MAX_CONNECTIONS) must be at least 1"
            );
        }
        if self.max_header_bytes < MIN_HEADER_BYTES || u32::try_from(self.max_header_bytes).is_err()
        {
            anyhow::bail!(
                "max header bytes (--max-header-bytes / HOOKRELAY_MAX_HEADER_BYTES) must be from {MIN_HEADER_BYTES} to 4294967295"
            );
        }
        if self.http2_max_streams == 0 {
            anyhow::bail!(
                "HTTP/2 streams (--http2-max-streams / HOOKRELAY_HTTP2_MAX_STREAMS) must be at least 1"
            );
        }
        Ok(())
    }
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
            encryption: KeySettings::default(),
            admin_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: None,
            rate_limits: RateLimitConfig::default(),
            max_webhooks_per_tenant: DEFAULT_MAX_WEBHOOKS_PER_TENANT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            connections: ConnectionLimits::default(),
            delivery: DeliveryConfig::default(),
            metrics_access: MetricsAccess::default(),
            retention: crate::retention::RetentionConfig::default(),
            recovery_pace: crate::domain::recovery::DEFAULT_PACE,
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
        if let Err(bad) = self.delivery.retry.validate() {
            let setting = match bad {
                BadRetryPolicy::ZeroBase => "--retry-base / HOOKRELAY_RETRY_BASE",
                BadRetryPolicy::Factor => "--retry-factor / HOOKRELAY_RETRY_FACTOR",
                BadRetryPolicy::MaxDelayBelowBase => {
                    "--retry-max-delay / HOOKRELAY_RETRY_MAX_DELAY"
                }
                BadRetryPolicy::Jitter => "--retry-jitter / HOOKRELAY_RETRY_JITTER",
            };
            anyhow::bail!("{bad} ({setting})");
        }
        if !(1..=crate::domain::recovery::PACE_MAX).contains(&self.recovery_pace) {
            anyhow::bail!(
                "recovery pace (--recovery-pace / HOOKRELAY_RECOVERY_PACE) must be from 1 to {}",
                crate::domain::recovery::PACE_MAX
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

    /// The retry settings were once never checked: a factor of 0.5 made every retry sooner
    /// than the last, and a jitter of 5 gave negative delays clamped to none.
    #[test]
    fn bad_retry_settings_are_refused_by_name() {
        type Change = fn(&mut ServeConfig);
        let base: Change = |c| c.delivery.retry.base = std::time::Duration::ZERO;
        let factor: Change = |c| c.delivery.retry.factor = 0.5;
        let max_delay: Change =
            |c| c.delivery.retry.max_delay = std::time::Duration::from_millis(10);
        let jitter: Change = |c| c.delivery.retry.jitter = 5.0;
        for (change, setting) in [
            (base, "HOOKRELAY_RETRY_BASE"),
            (factor, "HOOKRELAY_RETRY_FACTOR"),
            (max_delay, "HOOKRELAY_RETRY_MAX_DELAY"),
            (jitter, "HOOKRELAY_RETRY_JITTER"),
        ] {
            let mut c = ServeConfig::new("x.db");
            change(&mut c);
            let err = c
                .validate()
                .map_err(|e| e.to_string())
                .err()
                .unwrap_or_default();
            assert!(err.contains(setting), "{setting}: {err:?}");
        }
    }
}
