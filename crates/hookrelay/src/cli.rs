//! The command line: `hookrelay serve`, `hookrelay migrate`; the client commands (`listen`,
//! `tenants`, `keys`, `send`, `webhooks`) live in [`crate::listen`] and [`crate::client`].
//! Every flag has a `HOOKRELAY_*` environment twin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{
    ConnectionLimits, DEFAULT_DATABASE_URL, DEFAULT_DB_MAX_CONNECTIONS, DEFAULT_LISTEN,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_WEBHOOKS_PER_TENANT, KeySettings,
    MetricsAccess, RateLimitConfig, SecretString, ServeConfig,
};
use crate::delivery::{DeliveryConfig, Limits};
use crate::domain::egress::EgressPolicy;
use crate::domain::retry::RetryPolicy;
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "Webhook delivery: signed, retried, logged, counted."
)]
pub struct Cli {
    /// Configuration file (TOML; see hookrelay.example.toml). Its settings sit under the
    /// environment and the flags.
    #[arg(long, env = "HOOKRELAY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Log format on stderr.
    #[arg(long, env = "HOOKRELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    /// OpenTelemetry collector to export traces to over OTLP/HTTP (e.g.
    /// `http://localhost:4318`); unset, nothing is exported.
    #[arg(long, env = "HOOKRELAY_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing worth a box.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API and delivery).
    Serve(Box<ServeArgs>),
    /// Print the configuration `serve` would run with, and where each value comes from
    /// (default, file, environment or flag); secrets are hidden. Exits non-zero if invalid.
    Config(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Seal every webhook secret with the current encryption key (see docs/security.md).
    RotateEncryptionKey(DatabaseArgs),
    /// Receive webhooks on 127.0.0.1 and print each delivery, verified with --secret.
    Listen(crate::listen::ListenArgs),
    /// Create and list tenants on a running server (admin key).
    Tenants(crate::client::TenantsArgs),
    /// Create, list and revoke tenants' API keys on a running server (admin key).
    Keys(crate::client::KeysArgs),
    /// Add, change and deprecate event types in a running server's registry (admin key).
    EventTypes(crate::client::EventTypesArgs),
    /// Send an event to a running server (tenant key), optionally waiting for its deliveries.
    Send(crate::client::SendArgs),
    /// Manage a tenant's webhooks on a running server (tenant key): create, list, test, logs…
    Webhooks(crate::client::WebhooksArgs),
    /// Look at and replay a tenant's events on a running server (tenant key).
    Events(crate::client::EventsArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// SQLite file (`sqlite://path` or a plain path).
    #[arg(long, env = "HOOKRELAY_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// PostgreSQL only: connections in this node's pool.
    #[arg(long, env = "HOOKRELAY_DB_MAX_CONNECTIONS", default_value_t = DEFAULT_DB_MAX_CONNECTIONS)]
    pub db_max_connections: u32,

    /// Key sealing webhook secrets at rest: base64 of 32 bytes. Required with PostgreSQL;
    /// with SQLite, a key file beside the database is used (and made) when absent.
    #[arg(long, env = "HOOKRELAY_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<SecretString>,

    /// Older keys, comma-separated, still accepted to open secrets during a rotation.
    #[arg(long, env = "HOOKRELAY_OLD_ENCRYPTION_KEYS", hide_env_values = true)]
    pub old_encryption_keys: Option<SecretString>,
}

impl DatabaseArgs {
    fn keys(&self) -> KeySettings {
        KeySettings {
            key: self.encryption_key.clone(),
            old_keys: self.old_encryption_keys.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOOKRELAY_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Admin key (at least 32 characters). Without one, a key is generated on the first start
    /// and printed once.
    #[arg(long, env = "HOOKRELAY_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<SecretString>,

    /// Largest accepted API request body, in bytes.
    #[arg(long, env = "HOOKRELAY_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Largest accepted event, in bytes: a `POST /api/v1/events` body, and each event of a
    /// batch.
    #[arg(long, env = "HOOKRELAY_MAX_EVENT_BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// Largest accepted `POST /api/v1/events/batch` body, in bytes [default: 16 times
    /// --max-event-bytes, 4194304 with its default].
    #[arg(long, env = "HOOKRELAY_MAX_BATCH_BYTES")]
    pub max_batch_bytes: Option<usize>,

    /// Who may read `GET /metrics`: `public` (anyone reaching the listener), `admin` (the
    /// admin key as bearer token) or `off`.
    #[arg(long, env = "HOOKRELAY_METRICS", value_enum, default_value_t = MetricsAccess::Public)]
    pub metrics: MetricsAccess,

    /// Attempt logs and events older than this are deleted (pending deliveries never are);
    /// `off` or `0` keeps everything.
    #[arg(long, env = "HOOKRELAY_RETENTION", default_value = "30d", value_parser = crate::retention::parse_age_flag)]
    pub retention: Duration,

    /// Deliveries per second a recovery re-queues for a webhook without its own
    /// `rate_limit_per_second` (docs/recovery.md).
    #[arg(long, env = "HOOKRELAY_RECOVERY_PACE", default_value_t = crate::domain::recovery::DEFAULT_PACE)]
    pub recovery_pace: u32,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub connections: ConnectionArgs,
    /// How long a request body may take to arrive before the answer is 408.
    #[arg(long, env = "HOOKRELAY_BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Rate limits and quotas (see docs/security.md). 0 switches a limit off.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Failed authentications per minute allowed from one client address; past it the address
    /// gets 429 on every API request until the allowance refills.
    #[arg(long, env = "HOOKRELAY_AUTH_FAILURES_PER_MINUTE", default_value_t = RateLimitConfig::default().auth_failures_per_minute)]
    pub auth_failures_per_minute: u32,

    /// API requests per second allowed to one tenant key (the admin key is not limited).
    /// Off by default: set it when tenants post with their own keys and one must not crowd
    /// out the others.
    #[arg(long, env = "HOOKRELAY_RATE_LIMIT_PER_KEY", default_value_t = RateLimitConfig::default().per_key)]
    pub rate_limit_per_key: u32,

    /// API requests per second allowed from one client address, authenticated or not. Off by
    /// default.
    #[arg(long, env = "HOOKRELAY_RATE_LIMIT_PER_IP", default_value_t = RateLimitConfig::default().per_ip)]
    pub rate_limit_per_ip: u32,

    /// Header your reverse proxy sets to the client's address (e.g. `x-forwarded-for`); its
    /// last entry is used. Leave unset unless a proxy you run sets it: clients can forge it.
    #[arg(long, env = "HOOKRELAY_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Test sends (`POST /webhooks/{id}/test`) per minute for one webhook.
    #[arg(long, env = "HOOKRELAY_TEST_SENDS_PER_MINUTE", default_value_t = RateLimitConfig::default().test_sends_per_minute)]
    pub test_sends_per_minute: u32,

    /// Webhooks one tenant may have.
    #[arg(long, env = "HOOKRELAY_MAX_WEBHOOKS_PER_TENANT", default_value_t = DEFAULT_MAX_WEBHOOKS_PER_TENANT)]
    pub max_webhooks_per_tenant: u32,
}

/// Connection limits (see docs/security.md#connections).
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// How long a request head may take to arrive: from the connection's start, or from the
    /// first byte of a further request on a kept-alive connection. Then the connection is cut.
    #[arg(long, env = "HOOKRELAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// A connection with no request in flight is closed after this.
    #[arg(long, env = "HOOKRELAY_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Connections open at once; lowered at start to stay under the open-file limit. At the
    /// cap, connections that have not sent a whole request are closed first to make room.
    #[arg(long, env = "HOOKRELAY_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,

    /// Connections open at once from one client address (IPv6: one /64); 0: no limit. Behind
    /// a reverse proxy every connection comes from the proxy: raise it, or set 0.
    #[arg(long, env = "HOOKRELAY_MAX_CONNECTIONS_PER_IP", default_value_t = ConnectionLimits::default().max_connections_per_ip)]
    pub max_connections_per_ip: usize,

    /// Largest request head (request line and headers; HTTP/2: header list), in bytes; past
    /// it the answer is 431.
    #[arg(long, env = "HOOKRELAY_MAX_HEADER_BYTES", default_value_t = ConnectionLimits::default().max_header_bytes)]
    pub max_header_bytes: usize,

    /// HTTP/2: requests in flight at once on one connection.
    #[arg(long, env = "HOOKRELAY_HTTP2_MAX_STREAMS", default_value_t = ConnectionLimits::default().http2_max_streams)]
    pub http2_max_streams: u32,

    /// HTTP/2: streams a client may open and reset before the server has seen them, before
    /// the connection is closed (the rapid-reset attack).
    #[arg(long, env = "HOOKRELAY_HTTP2_MAX_PENDING_RESETS", default_value_t = ConnectionLimits::default().http2_max_pending_resets)]
    pub http2_max_pending_resets: usize,
}

/// Delivery tuning. Defaults suit most installations.
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Private or special-purpose ranges webhooks may reach anyway, as comma-separated CIDRs
    /// (e.g. `127.0.0.0/8` for local development). Cloud metadata addresses stay blocked.
    #[arg(long, env = "HOOKRELAY_ALLOW_PRIVATE_TARGETS", default_value = "", value_parser = EgressPolicy::parse)]
    pub allow_private_targets: EgressPolicy,

    /// The hosts file webhook host names are looked up in before DNS. Advanced: for tests
    /// and containers; names are never expanded with search domains either way.
    #[arg(long, env = "HOOKRELAY_HOSTS_FILE", default_value = crate::egress::SYSTEM_HOSTS_FILE, hide = true)]
    pub hosts_file: std::path::PathBuf,

    /// Delivery attempts in flight at once on this node, all webhooks together.
    #[arg(long, env = "HOOKRELAY_CONCURRENCY", default_value_t = 128)]
    pub concurrency: usize,

    /// Attempts in flight at once for one webhook.
    #[arg(long, env = "HOOKRELAY_PER_WEBHOOK_CONCURRENCY", default_value_t = 16)]
    pub per_webhook_concurrency: usize,

    /// Delay before the first retry; each further retry waits `--retry-factor` times longer.
    #[arg(long, env = "HOOKRELAY_RETRY_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub retry_base: Duration,

    #[arg(long, env = "HOOKRELAY_RETRY_FACTOR", default_value_t = 2.0)]
    pub retry_factor: f64,

    /// Longest wait between attempts, `Retry-After` included.
    #[arg(long, env = "HOOKRELAY_RETRY_MAX_DELAY", default_value = "24h", value_parser = humantime::parse_duration)]
    pub retry_max_delay: Duration,

    /// Random spread of each retry delay, as a fraction (0.1 = ±10 %).
    #[arg(long, env = "HOOKRELAY_RETRY_JITTER", default_value_t = 0.1)]
    pub retry_jitter: f64,

    /// Bytes of each response body kept in the attempt log.
    #[arg(long, env = "HOOKRELAY_RESPONSE_BODY_CAP", default_value_t = 8192)]
    pub response_body_cap: usize,

    /// How long SIGTERM waits for in-flight attempts before exiting.
    #[arg(long, env = "HOOKRELAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// How often due retries are looked for when nothing wakes the node sooner.
    #[arg(long, env = "HOOKRELAY_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// Consecutive failed deliveries (retries exhausted) after which a webhook is `failing`;
    /// 0: never.
    #[arg(long, env = "HOOKRELAY_FAILING_AFTER", default_value_t = crate::domain::health::DEFAULT_FAILING_AFTER)]
    pub failing_after: u32,

    /// How long a webhook's deliveries may fail continuously before it is disabled (webhooks
    /// may set their own `disable_after`); `off`: never.
    #[arg(long, env = "HOOKRELAY_DISABLE_AFTER", default_value = "5d", value_parser = parse_disable_after)]
    pub disable_after: DisableAfterSetting,

    /// Failed attempts the streak must also hold before `--disable-after` disables, so a
    /// rare failure spread over days never does.
    #[arg(long, env = "HOOKRELAY_DISABLE_MIN_ATTEMPTS", default_value_t = crate::domain::health::DEFAULT_DISABLE_MIN_ATTEMPTS)]
    pub disable_min_attempts: u32,
}

/// `--disable-after`: a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisableAfterSetting(pub Option<Duration>);

fn parse_disable_after(text: &str) -> Result<DisableAfterSetting, humantime::DurationError> {
    if text.trim() == "off" {
        return Ok(DisableAfterSetting(None));
    }
    humantime::parse_duration(text.trim()).map(|d| DisableAfterSetting(Some(d)))
}

impl From<ServeArgs> for ServeConfig {
    fn from(args: ServeArgs) -> Self {
        let d = args.delivery;
        let defaults = DeliveryConfig::default();
        ServeConfig {
            listen: args.listen,
            encryption: args.database.keys(),
            database_url: args.database.database_url,
            db_max_connections: args.database.db_max_connections,
            admin_key: args.admin_key,
            max_body_bytes: args.max_body_bytes,
            max_event_bytes: args.max_event_bytes,
            max_batch_bytes: args.max_batch_bytes,
            rate_limits: RateLimitConfig {
                per_key: args.limits.rate_limit_per_key,
                per_ip: args.limits.rate_limit_per_ip,
                auth_failures_per_minute: args.limits.auth_failures_per_minute,
                test_sends_per_minute: args.limits.test_sends_per_minute,
                client_ip_header: args.limits.client_ip_header,
            },
            max_webhooks_per_tenant: args.limits.max_webhooks_per_tenant,
            metrics_access: args.metrics,
            retention: crate::retention::RetentionConfig {
                age: (!args.retention.is_zero()).then_some(args.retention),
                ..crate::retention::RetentionConfig::default()
            },
            recovery_pace: args.recovery_pace,
            body_read_timeout: args.body_read_timeout,
            connections: ConnectionLimits {
                header_read_timeout: args.connections.header_read_timeout,
                idle_timeout: args.connections.idle_timeout,
                max_connections: args.connections.max_connections,
                max_connections_per_ip: args.connections.max_connections_per_ip,
                max_header_bytes: args.connections.max_header_bytes,
                http2_max_streams: args.connections.http2_max_streams,
                http2_max_pending_resets: args.connections.http2_max_pending_resets,
            },
            delivery: DeliveryConfig {
                retry: RetryPolicy {
                    base: d.retry_base,
                    factor: d.retry_factor,
                    max_delay: d.retry_max_delay,
                    jitter: d.retry_jitter,
                },
                concurrency: d.concurrency,
                limits: Limits {
                    per_webhook: d.per_webhook_concurrency,
                    ..defaults.limits
                },
                response_body_cap: d.response_body_cap,
                shutdown_grace: d.shutdown_grace,
                poll_interval: d.poll_interval,
                targets: Arc::new(d.allow_private_targets),
                hosts_file: d.hosts_file,
                health: crate::domain::health::HealthRules {
                    failing_after: d.failing_after,
                    disable_after: d.disable_after.0,
                    disable_min_attempts: d.disable_min_attempts,
                },
                ..defaults
            },
        }
    }
}

/// Parses the process's command line over the configuration file, then runs it.
pub fn run() -> anyhow::Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    let file = match crate::config_file::path_from(&args) {
        Some(path) => Some(crate::config_file::load(&path, &command)?),
        None => None,
    };
    if let Some(file) = &file {
        command = crate::config_file::apply(command, file);
    }
    let matches = command.clone().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `config` shows where each value came from, which only the matches know.
    let sources = matches!(cli.command, Command::Config(_)).then(|| {
        // Listed in definition order: the file's defaults moved its settings last in `command`.
        crate::config_file::describe(&Cli::command(), "config", &matches, file.as_ref())
    });
    execute(cli, sources.unwrap_or_default())
}

/// Runs a parsed command line to completion; `sources` is what `config` prints.
fn execute(cli: Cli, sources: String) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve((*args).into()).await,
            Command::Config(args) => {
                print!("{sources}");
                let config = ServeConfig::from(*args);
                config.validate()?;
                crate::keyring::check_settings(&config.database_url, &config.encryption)
            }
            Command::Migrate(args) => {
                let keyring =
                    std::sync::Arc::new(crate::keyring::load(&args.database_url, &args.keys())?);
                let store =
                    crate::store::connect(&args.database_url, args.db_max_connections, keyring)
                        .await?;
                store.close().await;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::RotateEncryptionKey(args) => {
                let sealed = crate::keyring::rotate(
                    &args.database_url,
                    args.db_max_connections,
                    &args.keys(),
                )
                .await?;
                println!("sealed {sealed} webhook secrets with the current key");
                Ok(())
            }
            Command::Listen(args) => crate::listen::run(args).await,
            Command::Tenants(args) => {
                crate::client::finish(crate::client::admin::tenants(args).await)
            }
            Command::Keys(args) => crate::client::finish(crate::client::admin::keys(args).await),
            Command::EventTypes(args) => {
                crate::client::finish(crate::client::event_types::event_types(args).await)
            }
            Command::Send(args) => crate::client::finish(crate::client::send::send(args).await),
            Command::Webhooks(args) => {
                crate::client::finish(crate::client::webhooks::webhooks(args).await)
            }
            Command::Events(args) => {
                crate::client::finish(crate::client::recovery::events(args).await)
            }
        }
    });
    drop(runtime);
    telemetry.shutdown();
    result
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    config.validate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    crate::server::run(config, listener, shutdown).await
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The duration flags spell their defaults as text; the server's own defaults are the
    /// constants. They must say the same.
    #[test]
    fn duration_flag_defaults_are_the_server_s() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        let default = |id: &str| {
            let arg = serve.get_arguments().find(|a| a.get_id() == id).unwrap();
            let text = arg.get_default_values()[0].to_str().unwrap();
            humantime::parse_duration(text).unwrap()
        };
        let connections = ConnectionLimits::default();
        assert_eq!(
            default("header_read_timeout"),
            connections.header_read_timeout
        );
        assert_eq!(default("idle_timeout"), connections.idle_timeout);
        assert_eq!(
            default("body_read_timeout"),
            crate::config::DEFAULT_BODY_READ_TIMEOUT
        );
    }
}
