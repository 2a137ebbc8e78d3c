//! hookrelay-bench: end-to-end throughput and latency of hookrelay on loopback.
//!
//! **Separate processes (the default)**, as users run it: the server is the real `hookrelay`
//! binary (`hookrelay serve`, found next to this executable, as `cargo build --release`
//! leaves it, or `--server-bin PATH`) in its own process, with its default settings plus an
//! admin key, a key sealing webhook secrets, loopback targets allowed
//! (`HOOKRELAY_ALLOW_PRIVATE_TARGETS=127.0.0.0/8`), `--listen 127.0.0.1:0` and JSON logs (the
//! bench reads the port from the `hookrelay listening` line). The receiver and the load
//! generator are this binary again, in processes of their own (hidden subcommands
//! `receiver` and `load`; see `separate.rs`). Each phase gets a fresh database (a SQLite file
//! in a new temporary directory, or with `--postgres URL` a fresh PostgreSQL database on that
//! server, dropped after the phase; the URL's `sslmode` is kept) and a fresh server, receiver
//! and load generator. Every child is killed by PID when its phase ends, fails or is
//! interrupted, and dies with the bench (`PR_SET_PDEATHSIG`).
//!
//! The **ceiling** phase runs first: the same load generator, same clients, same request
//! (body, headers), posting straight to the receiver for `--duration`. Every throughput
//! figure after it is also printed as a ratio of that rate. Peak RSS is the server process's
//! own (`VmHWM` from `/proc/<pid>/status`, read before it is stopped).
//!
//! **In process** (`--in-process`, for profiling): the server (`hookrelay::run`, rate limits
//! off), the load generator and the receiver share this process and its tokio runtime, and
//! `--nodes N` runs N servers on one PostgreSQL database. Peak RSS is then this whole
//! process's.
//!
//! Each phase is set up through the API (a tenant, a key, N webhooks subscribed to `*`).
//! Every event is a `message.new` whose delivered envelope is about 300 bytes.
//!
//! - **ingest**: `--concurrency` clients post events back to back for `--duration`, one
//!   webhook. Figure: events accepted per second (only 202 answers count; anything else is an
//!   error). Deliveries run meanwhile, as they would in production. Separate processes: the
//!   server's default settings; `ingest-unlimited` switches the API limits off,
//!   `ingest-limited` sets them far above the load.
//! - **fanout1 / fanout10**: `--events-1` (`--events-10`) events posted by `--concurrency`
//!   clients to 1 (10) webhooks. Figure: deliveries per second from the first post to the
//!   arrival of the last delivery at the receiver.
//! - **latency**: for each of `--rates` events/s (1 webhook), one post per tick of a steady
//!   schedule for `--latency-seconds`, each post in its own task. Latency per event: arrival at
//!   the receiver minus the moment just before its POST was sent (across processes on
//!   `CLOCK_MONOTONIC`), matched by event id (the 202 answer's `id` is the delivery's
//!   `webhook-id`). Figures: p50, p99, max.
//!
//! Every phase is bounded in count and time and stops by itself.

mod child;
mod database;
mod load;
mod phases;
mod receiver;
mod report;
mod separate;
mod server;
mod system;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};

use database::{Backend, ServerFacts};
use phases::{FanoutResult, IngestResult, LatencyResult, Settings};
use report::Table;
use separate::Limits;

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay-bench",
    about = "End-to-end throughput and latency of hookrelay on loopback: the release server, \
             the load generator and the receiver each in their own process (--in-process: all \
             in this one).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    child: Option<ChildCommand>,
    #[command(flatten)]
    args: Args,
}

/// The bench's own child processes (separate-process mode); not for direct use.
#[derive(Debug, Subcommand)]
enum ChildCommand {
    #[command(hide = true)]
    Receiver(separate::ReceiverArgs),
    #[command(hide = true)]
    Load(load::LoadArgs),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Seconds the ingest phases (and the ceiling) post for.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    duration: Duration,

    /// Events posted in the fan-out phase with 1 webhook.
    #[arg(long = "events-1", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    events_1: u64,

    /// Events posted in the fan-out phase with 10 webhooks (10 deliveries each).
    #[arg(long = "events-10", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    events_10: u64,

    /// Seconds each latency run sends for.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    latency_seconds: Duration,

    /// Event rates (per second) of the latency phase, one run each.
    #[arg(long, value_delimiter = ',', default_value = "500,2000", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rates: Vec<u32>,

    /// Phases to run, comma-separated. Default: ceiling,ingest,fanout1,fanout10,latency
    /// (separate processes); ingest,ingest-limited,fanout1,fanout10,latency (--in-process).
    #[arg(long, value_enum, value_delimiter = ',')]
    phases: Option<Vec<Phase>>,

    /// Concurrent clients of the ingest and fan-out phases (and of the ceiling).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096).map(usize::from))]
    concurrency: usize,

    /// Seconds a phase waits for outstanding deliveries after its last post before reporting
    /// what arrived.
    #[arg(long, default_value = "120", value_parser = parse_seconds)]
    wait_timeout: Duration,

    /// Directory for the temporary SQLite databases (default: the system's temporary
    /// directory). Its file system decides what an fsync costs.
    #[arg(long)]
    db_dir: Option<PathBuf>,

    /// Run on PostgreSQL instead of SQLite: each phase creates a fresh database
    /// `hookrelay_bench_<random>` on this server, through a connection to this URL (its user
    /// needs CREATEDB), and drops it at the end of the phase. The URL's query (`sslmode=…`)
    /// is kept for the server's connections.
    #[arg(
        long,
        env = "HOOKRELAY_BENCH_POSTGRES_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    postgres: Option<String>,

    /// Run server, load generator and receiver in this one process, on one tokio runtime
    /// (`hookrelay::run` with the rate limits off): for profiling the engine.
    #[arg(long)]
    in_process: bool,

    /// The `hookrelay` executable to run (default: `hookrelay` next to this executable, as
    /// `cargo build --release` leaves it).
    #[arg(long, value_name = "PATH", conflicts_with = "in_process")]
    server_bin: Option<PathBuf>,

    /// With --in-process: hookrelay servers (nodes) in this process, all on the phase's one
    /// database; the load generator posts to them in turn. More than 1 needs --postgres.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16).map(usize::from))]
    nodes: usize,

    /// PostgreSQL pool size of each node (hookrelay's --db-max-connections). Default: 8 in
    /// process; the server's own default in separate processes.
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=1000))]
    db_max_connections: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// The load generator posting the same requests straight to the receiver: the most any
    /// server could reach here (separate processes only).
    Ceiling,
    /// Separate processes: the server's default settings; --in-process: API limits off.
    Ingest,
    /// Ingest with the API rate limits off: the engine's capacity.
    IngestUnlimited,
    /// Ingest again with the API rate limits switched on (set too high to refuse anything):
    /// what counting every request per key and per address costs, as a ratio to `ingest`.
    IngestLimited,
    Fanout1,
    Fanout10,
    Latency,
}

impl Phase {
    const ALL: [Phase; 7] = [
        Phase::Ceiling,
        Phase::Ingest,
        Phase::IngestUnlimited,
        Phase::IngestLimited,
        Phase::Fanout1,
        Phase::Fanout10,
        Phase::Latency,
    ];

    /// What runs without `--phases`.
    fn defaults(in_process: bool) -> Vec<Phase> {
        if in_process {
            vec![
                Phase::Ingest,
                Phase::IngestLimited,
                Phase::Fanout1,
                Phase::Fanout10,
                Phase::Latency,
            ]
        } else {
            vec![
                Phase::Ceiling,
                Phase::Ingest,
                Phase::Fanout1,
                Phase::Fanout10,
                Phase::Latency,
            ]
        }
    }
}

/// Seconds, fractions allowed, at most an hour.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err("must be more than 0 and at most 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

// The same allocator as the hookrelay binary, so the in-process server runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the phases run.
enum Mode {
    InProcess(Settings),
    Separate(separate::Settings),
}

impl Mode {
    async fn ingest(
        &self,
        duration: Duration,
        limits: Limits,
    ) -> anyhow::Result<(IngestResult, Option<u64>)> {
        match self {
            Mode::InProcess(settings) => {
                let settings = Settings {
                    api_limits: limits == Limits::High,
                    ..settings.clone()
                };
                Ok((phases::ingest(&settings, duration).await?, None))
            }
            Mode::Separate(settings) => {
                let m = separate::ingest(settings, duration, limits).await?;
                Ok((m.result, m.server_peak_rss))
            }
        }
    }

    async fn fanout(
        &self,
        webhooks: usize,
        events: u64,
    ) -> anyhow::Result<(FanoutResult, Option<u64>)> {
        match self {
            Mode::InProcess(settings) => {
                Ok((phases::fanout(settings, webhooks, events).await?, None))
            }
            Mode::Separate(settings) => {
                let m = separate::fanout(settings, webhooks, events).await?;
                Ok((m.result, m.server_peak_rss))
            }
        }
    }

    async fn latency(
        &self,
        rate: u32,
        seconds: Duration,
    ) -> anyhow::Result<(LatencyResult, Option<u64>)> {
        match self {
            Mode::InProcess(settings) => {
                Ok((phases::latency(settings, rate, seconds).await?, None))
            }
            Mode::Separate(settings) => {
                let m = separate::latency(settings, rate, seconds).await?;
                Ok((m.result, m.server_peak_rss))
            }
        }
    }

    fn backend(&self) -> &Backend {
        match self {
            Mode::InProcess(settings) => &settings.backend,
            Mode::Separate(settings) => &settings.backend,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.child {
        Some(ChildCommand::Receiver(args)) => runtime.block_on(separate::receiver_main(args)),
        Some(ChildCommand::Load(args)) => runtime.block_on(load::main(args)),
        None => runtime.block_on(bench(cli.args)),
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let phases = args
        .phases
        .clone()
        .unwrap_or_else(|| Phase::defaults(args.in_process));
    if !args.in_process {
        if args.nodes > 1 {
            anyhow::bail!(
                "--nodes {} needs --in-process: the separate-process mode runs one server",
                args.nodes
            );
        }
        if phases.contains(&Phase::Ceiling) && phases.len() == 1 {
            eprintln!("note: only the ceiling is measured");
        }
    } else if phases.contains(&Phase::Ceiling) {
        anyhow::bail!("the ceiling phase needs separate processes (drop --in-process)");
    }
    let backend = match &args.postgres {
        Some(url) => {
            if args.db_dir.is_some() {
                anyhow::bail!(
                    "--db-dir is for SQLite; with --postgres the databases live on the PostgreSQL server"
                );
            }
            Backend::postgres(url)?
        }
        None if args.nodes > 1 => anyhow::bail!(
            "--nodes {} needs --postgres URL: several nodes share one PostgreSQL database; \
             a SQLite database serves one node only",
            args.nodes
        ),
        None => Backend::Sqlite {
            dir: args.db_dir.clone(),
        },
    };
    let in_process_pool = args.db_max_connections.unwrap_or(8);
    // Reach the server before any phase, and learn what the report says about it.
    let facts = match &backend {
        Backend::Postgres { admin_url } => {
            let facts = database::server_facts(admin_url).await?;
            let pool = args
                .db_max_connections
                .unwrap_or(hookrelay::config::DEFAULT_DB_MAX_CONNECTIONS);
            let pool = if args.in_process {
                in_process_pool
            } else {
                pool
            };
            let needed = args.nodes as u64 * (u64::from(pool) + 1) + 1;
            if let Some(max) = facts.max_connections
                && needed > u64::from(max)
            {
                eprintln!(
                    "warning: {} node(s) × ({pool} + 1 for LISTEN) + 1 admin = {needed} \
                     connections, more than the server's max_connections ({max})",
                    args.nodes
                );
            }
            Some(facts)
        }
        Backend::Sqlite { .. } => None,
    };
    let mode = if args.in_process {
        Mode::InProcess(Settings {
            concurrency: args.concurrency,
            wait_timeout: args.wait_timeout,
            backend,
            nodes: args.nodes,
            db_max_connections: in_process_pool,
            api_limits: false,
        })
    } else {
        Mode::Separate(separate::Settings {
            server_bin: separate::locate_server(args.server_bin.as_deref())?,
            concurrency: args.concurrency,
            wait_timeout: args.wait_timeout,
            backend,
            db_max_connections: args.db_max_connections,
        })
    };
    // Ctrl-C drops the phase in progress, and with it its database and child processes.
    let table = tokio::select! {
        table = run(&args, &mode, &phases, facts.as_ref()) => table?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    };
    println!("\n{}", table.render());
    Ok(())
}

async fn run(
    args: &Args,
    mode: &Mode,
    phases: &[Phase],
    facts: Option<&ServerFacts>,
) -> anyhow::Result<Table> {
    let in_process = matches!(mode, Mode::InProcess(_));
    let mut table = Table::default();
    // In process, per-phase peaks need VmHWM reset between phases; the overall peak is the
    // largest seen. In separate processes each phase has its own server process.
    let per_phase_rss = !in_process || system::reset_peak_rss();
    let mut overall_rss = if in_process {
        system::peak_rss_bytes()
    } else {
        None
    };
    let mut envelope_bytes = None;
    for phase in Phase::ALL.into_iter().filter(|p| phases.contains(p)) {
        if in_process && per_phase_rss {
            system::reset_peak_rss();
        }
        let (label, server_peak) = match phase {
            Phase::Ceiling => {
                let Mode::Separate(settings) = mode else {
                    anyhow::bail!("the ceiling phase needs separate processes");
                };
                eprintln!(
                    "ceiling: {} clients straight to the receiver for {:.1} s …",
                    args.concurrency,
                    args.duration.as_secs_f64()
                );
                let r = separate::ceiling(settings, args.duration).await?;
                table.ceiling("ceiling", &r, args.concurrency);
                // No server in this phase, so no RSS row.
                continue;
            }
            Phase::Ingest | Phase::IngestUnlimited | Phase::IngestLimited => {
                let (name, limits) = match phase {
                    Phase::Ingest if in_process => ("ingest", Limits::Off),
                    Phase::Ingest => ("ingest (default settings)", Limits::Defaults),
                    Phase::IngestUnlimited => ("ingest (API limits off)", Limits::Off),
                    _ => ("ingest (API limits on)", Limits::High),
                };
                eprintln!(
                    "{name}: {} clients for {:.1} s …",
                    args.concurrency,
                    args.duration.as_secs_f64()
                );
                let (r, peak) = mode.ingest(args.duration, limits).await?;
                table.ingest(name, &r, args.concurrency);
                envelope_bytes = envelope_bytes.or(nonzero(r.delivered.body_bytes));
                (name.to_owned(), peak)
            }
            Phase::Fanout1 | Phase::Fanout10 => {
                let (name, webhooks, events) = if phase == Phase::Fanout1 {
                    ("fan-out 1", 1, args.events_1)
                } else {
                    ("fan-out 10", 10, args.events_10)
                };
                eprintln!("{name}: {events} events × {webhooks} webhook(s) …");
                let (r, peak) = mode.fanout(webhooks, events).await?;
                table.fanout(&r, name);
                envelope_bytes = envelope_bytes.or(nonzero(r.arrived.body_bytes));
                (name.to_owned(), peak)
            }
            Phase::Latency => {
                let mut peak = None;
                for &rate in &args.rates {
                    eprintln!(
                        "latency: {rate} events/s for {:.1} s …",
                        args.latency_seconds.as_secs_f64()
                    );
                    let (r, p) = mode.latency(rate, args.latency_seconds).await?;
                    table.latency(&r);
                    peak = peak.max(p);
                }
                ("latency".to_owned(), peak)
            }
        };
        let (peak, figure) = if in_process {
            let figure = if per_phase_rss {
                "peak RSS during the phase (whole process)"
            } else {
                "peak RSS so far (whole process)"
            };
            (system::peak_rss_bytes(), figure)
        } else {
            (
                server_peak,
                "server peak RSS (VmHWM of the hookrelay process)",
            )
        };
        overall_rss = overall_rss.max(peak);
        table.row(&label, figure, peak.map_or("n/a".into(), report::mebibytes));
    }

    let all = "whole run";
    let (backend, filesystem) = describe_backend(mode.backend(), facts);
    table.row(all, "database backend", backend);
    match mode {
        Mode::InProcess(settings) => {
            table.row(
                all,
                "hookrelay nodes (servers in this process, one database)",
                match &settings.backend {
                    Backend::Postgres { .. } if settings.nodes > 1 => format!(
                        "{} (db_max_connections {} each; posts round-robin, setup through node 0)",
                        settings.nodes, settings.db_max_connections,
                    ),
                    Backend::Postgres { .. } => format!(
                        "{} (db_max_connections {})",
                        settings.nodes, settings.db_max_connections
                    ),
                    Backend::Sqlite { .. } => settings.nodes.to_string(),
                },
            );
        }
        Mode::Separate(settings) => {
            table.row(
                all,
                "processes",
                format!(
                    "server {} (defaults{}), load generator, receiver",
                    settings.server_bin.display(),
                    settings
                        .db_max_connections
                        .map_or(String::new(), |n| format!(", --db-max-connections {n}"))
                ),
            );
        }
    }
    table.row(
        all,
        "cores (available parallelism)",
        system::cores().map_or("n/a".into(), |n| n.to_string()),
    );
    table.row(all, "database file system", filesystem);
    table.row(
        all,
        "delivered envelope size",
        envelope_bytes.map_or("n/a".into(), |b| format!("{b} bytes")),
    );
    let rss_figure = match (mode, mode.backend()) {
        (Mode::Separate(_), _) => "server peak RSS (VmHWM of the hookrelay process, largest phase)",
        (Mode::InProcess(_), Backend::Sqlite { .. }) => {
            "peak RSS (VmHWM) of the whole benchmark process (server + load generator + receiver)"
        }
        (Mode::InProcess(_), Backend::Postgres { .. }) => {
            "peak RSS (VmHWM) of the whole benchmark process (nodes + load + receiver; not PostgreSQL)"
        }
    };
    table.row(
        all,
        rss_figure,
        overall_rss.map_or("n/a".into(), report::mebibytes),
    );
    Ok(table)
}

/// The "database backend" and "database file system" rows.
fn describe_backend(backend: &Backend, facts: Option<&ServerFacts>) -> (String, String) {
    match backend {
        Backend::Sqlite { dir } => {
            let dir = dir.clone().unwrap_or_else(std::env::temp_dir);
            (
                "SQLite file (WAL, synchronous=FULL)".to_owned(),
                format!(
                    "{} ({})",
                    system::filesystem_of(&dir).unwrap_or_else(|| "unknown".into()),
                    dir.display()
                ),
            )
        }
        Backend::Postgres { admin_url } => {
            let address = database::server_address(admin_url);
            let Some(facts) = facts else {
                return (format!("PostgreSQL at {address}"), "unknown".into());
            };
            let backend = format!(
                "PostgreSQL {} at {address} (fsync={}, synchronous_commit={})",
                facts.version.split_whitespace().next().unwrap_or("?"),
                facts.fsync,
                facts.synchronous_commit
            );
            let filesystem = match facts.data_directory.as_deref() {
                Some(dir) => format!(
                    "{} (the PostgreSQL data directory {dir})",
                    system::filesystem_of(Path::new(dir))
                        .unwrap_or_else(|| "unknown: not on this machine".into())
                ),
                None => {
                    "unknown (the PostgreSQL data directory is not readable by this user)".into()
                }
            };
            (backend, filesystem)
        }
    }
}

fn nonzero(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}
