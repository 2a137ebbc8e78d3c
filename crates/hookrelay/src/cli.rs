//! The command line: `hookrelay serve`, `hookrelay migrate`. Every flag has a `HOOKRELAY_*`
//! environment twin.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{
    DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, SecretString, ServeConfig,
};

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
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// SQLite file (`sqlite://path` or a plain path).
    #[arg(long, env = "HOOKRELAY_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
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
}

impl From<ServeArgs> for ServeConfig {
    fn from(args: ServeArgs) -> Self {
        ServeConfig {
            listen: args.listen,
            database_url: args.database.database_url,
            admin_key: args.admin_key,
            max_body_bytes: args.max_body_bytes,
        }
    }
}

/// Runs a parsed command line to completion.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    crate::telemetry::init(cli.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args.into()).await,
            Command::Migrate(args) => {
                let store = crate::store::connect(&args.database_url).await?;
                store.close().await;
                tracing::info!("migrations applied");
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
