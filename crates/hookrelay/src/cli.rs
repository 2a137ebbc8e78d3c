//! The command line: `hookrelay serve`, `hookrelay migrate`. Every flag has a `HOOKRELAY_*`
//! environment twin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{
    DEFAULT_DATABASE_URL, DEFAULT_DB_MAX_CONNECTIONS, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_EVENT_BYTES, SecretString, ServeConfig,
};
use crate::delivery::{DeliveryConfig, Limits};
use crate::domain::retry::RetryPolicy;
use crate::domain::target::TargetPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "Webhook delivery: signed, retried, logged, counted."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, env = "HOOKRELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (API and delivery).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Seal every webhook secret with the current encryption key (see docs/security.md).
    RotateEncryptionKey(DatabaseArgs),
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
    fn keys(&self) -> crate::keyring::KeySettings {
        crate::keyring::KeySettings {
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

    /// Largest accepted event (`POST /api/v1/events` body), in bytes.
    #[arg(long, env = "HOOKRELAY_MAX_EVENT_BYTES", default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// How long a request body may take to arrive before the answer is 408.
    #[arg(long, env = "HOOKRELAY_BODY_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,

    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Delivery tuning. Defaults suit most installations.
#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Private or special-purpose ranges webhooks may reach anyway, as comma-separated CIDRs
    /// (e.g. `127.0.0.0/8` for local development). Cloud metadata addresses stay blocked.
    #[arg(long, env = "HOOKRELAY_ALLOW_PRIVATE_TARGETS", default_value = "", value_parser = TargetPolicy::parse)]
    pub allow_private_targets: TargetPolicy,

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
    #[arg(long, env = "HOOKRELAY_RETRY_MAX_DELAY", default_value = "1h", value_parser = humantime::parse_duration)]
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
            body_read_timeout: args.body_read_timeout,
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
                ..defaults
            },
        }
    }
}

/// Runs a parsed command line to completion.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    crate::telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve((*args).into()).await,
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
        }
    })
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
