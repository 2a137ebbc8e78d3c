//! hookrelay-bench: end-to-end throughput and latency of hookrelay, in one process, on
//! loopback.
//!
//! What runs: the real server (`hookrelay::run`, default settings: durable SQLite in WAL mode
//! with `synchronous=FULL`, default delivery engine) on 127.0.0.1, a load generator (tokio
//! tasks sharing one `reqwest::Client`) that calls the real HTTP API, and a receiver (axum on
//! 127.0.0.1) that answers every delivery with 204 at once and stamps its arrival with an
//! `Instant`. All three share this process and its tokio runtime, so they compete for the same
//! cores: the figures are for the whole system on this machine, not for the server alone.
//!
//! Each phase gets a fresh temporary database and a fresh server, set up through the API (a
//! tenant, a key, N webhooks subscribed to `*`). Every event is a `message.new` whose
//! delivered envelope is about 300 bytes.
//!
//! - **ingest**: `--concurrency` clients post events back to back for `--duration`, one
//!   webhook. Figure: events accepted per second (only 202 answers count; anything else is an
//!   error). Deliveries run meanwhile, as they would in production.
//! - **fanout1 / fanout10**: `--events-1` (`--events-10`) events posted by `--concurrency`
//!   clients to 1 (10) webhooks. Figure: deliveries per second from the first post to the
//!   arrival of the last delivery at the receiver.
//! - **latency**: for each of `--rates` events/s (1 webhook), one post per tick of a steady
//!   schedule for `--latency-seconds`, each post in its own task. Latency per event: arrival at
//!   the receiver minus the `Instant` just before its POST was sent, matched by event id (the
//!   202 answer's `id` is the delivery's `webhook-id`). Figures: p50, p99, max.
//!
//! Peak RSS is `VmHWM` of this process, so it covers server, load generator and receiver
//! together. Every phase is bounded in count and time and stops by itself.

mod phases;
mod receiver;
mod report;
mod server;
mod system;

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Parser, ValueEnum};

use phases::Settings;
use report::Table;

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay-bench",
    about = "End-to-end throughput and latency of hookrelay (server, load and receiver in this process, on loopback)."
)]
struct Args {
    /// Seconds the ingest phase posts for.
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

    /// Phases to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,fanout1,fanout10,latency"
    )]
    phases: Vec<Phase>,

    /// Concurrent clients of the ingest and fan-out phases.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096).map(usize::from))]
    concurrency: usize,

    /// Seconds a phase waits for outstanding deliveries after its last post before reporting
    /// what arrived.
    #[arg(long, default_value = "120", value_parser = parse_seconds)]
    wait_timeout: Duration,

    /// Directory for the temporary databases (default: the system's temporary directory).
    /// Its file system decides what an fsync costs.
    #[arg(long)]
    db_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Ingest,
    Fanout1,
    Fanout10,
    Latency,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::Ingest,
        Phase::Fanout1,
        Phase::Fanout10,
        Phase::Latency,
    ];
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful figures");
    }
    let settings = Settings {
        concurrency: args.concurrency,
        wait_timeout: args.wait_timeout,
        db_dir: args.db_dir.clone(),
    };
    let db_dir = args.db_dir.clone().unwrap_or_else(std::env::temp_dir);

    let mut table = Table::default();
    // Per-phase peaks need VmHWM reset between phases; the overall peak is the largest seen.
    let per_phase_rss = system::reset_peak_rss();
    let mut overall_rss = system::peak_rss_bytes();
    let mut envelope_bytes = None;
    for phase in Phase::ALL.into_iter().filter(|p| args.phases.contains(p)) {
        if per_phase_rss {
            system::reset_peak_rss();
        }
        let label = match phase {
            Phase::Ingest => {
                eprintln!(
                    "ingest: {} clients for {:.1} s …",
                    args.concurrency,
                    args.duration.as_secs_f64()
                );
                let r = phases::ingest(&settings, args.duration).await?;
                table.ingest(&r, args.concurrency);
                envelope_bytes = envelope_bytes.or(nonzero(r.delivered.body_bytes));
                "ingest".to_owned()
            }
            Phase::Fanout1 | Phase::Fanout10 => {
                let (name, webhooks, events) = if phase == Phase::Fanout1 {
                    ("fan-out 1", 1, args.events_1)
                } else {
                    ("fan-out 10", 10, args.events_10)
                };
                eprintln!("{name}: {events} events × {webhooks} webhook(s) …");
                let r = phases::fanout(&settings, webhooks, events).await?;
                table.fanout(&r, name);
                envelope_bytes = envelope_bytes.or(nonzero(r.arrived.body_bytes));
                name.to_owned()
            }
            Phase::Latency => {
                for &rate in &args.rates {
                    eprintln!(
                        "latency: {rate} events/s for {:.1} s …",
                        args.latency_seconds.as_secs_f64()
                    );
                    let r = phases::latency(&settings, rate, args.latency_seconds).await?;
                    table.latency(&r);
                }
                "latency".to_owned()
            }
        };
        let peak = system::peak_rss_bytes();
        overall_rss = overall_rss.max(peak);
        let figure = if per_phase_rss {
            "peak RSS during the phase (whole process)"
        } else {
            "peak RSS so far (whole process)"
        };
        table.row(&label, figure, peak.map_or("n/a".into(), report::mebibytes));
    }

    let all = "whole run";
    table.row(
        all,
        "cores (available parallelism)",
        system::cores().map_or("n/a".into(), |n| n.to_string()),
    );
    table.row(
        all,
        "database file system",
        format!(
            "{} ({})",
            system::filesystem_of(&db_dir).unwrap_or_else(|| "unknown".into()),
            db_dir.display()
        ),
    );
    table.row(
        all,
        "delivered envelope size",
        envelope_bytes.map_or("n/a".into(), |b| format!("{b} bytes")),
    );
    table.row(
        all,
        "peak RSS (VmHWM) of the whole benchmark process (server + load generator + receiver)",
        overall_rss.map_or("n/a".into(), report::mebibytes),
    );
    println!("\n{}", table.render());
    Ok(())
}

fn nonzero(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}
