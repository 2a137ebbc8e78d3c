//! The load generator of the separate-process mode, run as `hookrelay-bench load …` (a
//! hidden subcommand) by the bench itself. It posts the bench's event to one URL, with
//! `--concurrency` clients sharing one `reqwest::Client`, and prints one JSON [`LoadReport`]
//! on stdout when done.
//!
//! The same generator measures the ceiling: pointed at the receiver (`--webhook-ids`, so each
//! request carries a fresh `webhook-id` and the receiver books it as it books a delivery),
//! with the same body, headers and clients as against hookrelay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::child::{Clock, monotonic_ns};
use crate::phases::{Errors, event_body, event_id};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Where every request goes.
    #[arg(long)]
    pub url: String,
    /// Bearer token sent with every request.
    #[arg(long)]
    pub key: Option<String>,
    /// Status that counts as success (202 from hookrelay, 204 from the receiver).
    #[arg(long, default_value_t = 202)]
    pub expect: u16,
    /// Send a unique `webhook-id` header with each request (for the ceiling).
    #[arg(long)]
    pub webhook_ids: bool,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[command(flatten)]
    pub shape: Shape,
}

/// Exactly one of: for a time, a count, or at a rate.
#[derive(Debug, Clone, clap::Args)]
pub struct Shape {
    /// Post back to back for this many seconds.
    #[arg(long, conflicts_with_all = ["count", "rate"])]
    pub seconds: Option<f64>,
    /// Post this many events, back to back.
    #[arg(long, conflicts_with_all = ["seconds", "rate"])]
    pub count: Option<u64>,
    /// Post at this rate (events/s), one task per post, for `--for-seconds`.
    #[arg(long, conflicts_with_all = ["seconds", "count"])]
    pub rate: Option<u32>,
    #[arg(long)]
    pub for_seconds: Option<f64>,
}

/// What the load generator prints when done.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LoadReport {
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// [`monotonic_ns`] at the first post and after the last answer.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Rate mode: (event id, [`monotonic_ns`] just before its POST) per accepted event.
    pub sends: Vec<(String, u64)>,
    pub max_send_lag_ns: u64,
    pub max_in_flight: u64,
}

struct Poster {
    client: reqwest::Client,
    args: LoadArgs,
    body: Bytes,
    expect: StatusCode,
    next_id: AtomicU64,
}

impl Poster {
    async fn post(&self) -> Result<Bytes, String> {
        let mut request = self
            .client
            .post(&self.args.url)
            .header("content-type", "application/json")
            .body(self.body.clone());
        if let Some(key) = &self.args.key {
            request = request.bearer_auth(key);
        }
        if self.args.webhook_ids {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            request = request.header("webhook-id", format!("ceiling_{n}"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if status == self.expect {
            Ok(body)
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }
}

/// The `load` subcommand: runs, prints its report, exits.
pub async fn main(args: LoadArgs) -> anyhow::Result<()> {
    crate::child::exit_when_stdin_closes();
    let report = run(args).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

pub async fn run(args: LoadArgs) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency.max(1024))
        // Bounds every request, so the generator cannot hang on one.
        .timeout(Duration::from_secs(30))
        .build()?;
    let expect = StatusCode::from_u16(args.expect).context("--expect")?;
    let poster = Arc::new(Poster {
        client,
        body: event_body(),
        expect,
        next_id: AtomicU64::new(0),
        args: args.clone(),
    });
    let errors = Arc::new(Errors::default());
    let mut report = match (args.shape.seconds, args.shape.count, args.shape.rate) {
        (Some(seconds), None, None) => {
            let deadline = Instant::now() + seconds_arg(seconds)?;
            back_to_back(&poster, &errors, args.concurrency, move |_| {
                Instant::now() < deadline
            })
            .await?
        }
        (None, Some(count), None) => {
            back_to_back(&poster, &errors, args.concurrency, move |n| n < count).await?
        }
        (None, None, Some(rate)) => {
            let seconds = seconds_arg(args.shape.for_seconds.unwrap_or(1.0))?;
            at_rate(&poster, &errors, rate, seconds).await?
        }
        _ => anyhow::bail!("give exactly one of --seconds, --count, --rate"),
    };
    (report.errors, report.first_error) = errors.take();
    Ok(report)
}

fn seconds_arg(seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|e| anyhow::anyhow!("seconds: {e}"))
}

/// `concurrency` clients post while `more(n)` holds for the `n`-th post overall.
async fn back_to_back(
    poster: &Arc<Poster>,
    errors: &Arc<Errors>,
    concurrency: usize,
    more: impl Fn(u64) -> bool + Send + Sync + Clone + 'static,
) -> anyhow::Result<LoadReport> {
    let accepted = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start_ns = monotonic_ns();
    let mut clients = JoinSet::new();
    for _ in 0..concurrency {
        let (poster, errors, accepted, next, more) = (
            poster.clone(),
            errors.clone(),
            accepted.clone(),
            next.clone(),
            more.clone(),
        );
        clients.spawn(async move {
            while more(next.fetch_add(1, Ordering::Relaxed)) {
                match poster.post().await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => errors.note(e),
                }
            }
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.context("a load task failed")?;
    }
    Ok(LoadReport {
        accepted: accepted.load(Ordering::Relaxed),
        start_ns,
        end_ns: monotonic_ns(),
        ..LoadReport::default()
    })
}

/// One post per tick of a steady schedule, each in its own task; records when each accepted
/// event was sent.
async fn at_rate(
    poster: &Arc<Poster>,
    errors: &Arc<Errors>,
    rate: u32,
    seconds: Duration,
) -> anyhow::Result<LoadReport> {
    let total = (f64::from(rate) * seconds.as_secs_f64()).round().max(1.0) as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let clock = Clock::now();
    let start_ns = monotonic_ns();
    let start = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(start, period);
    // Late ticks fire at once until the schedule is caught up: the rate holds on average.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let max_lag_ns = Arc::new(AtomicU64::new(0));
    let mut posts = JoinSet::new();
    for _ in 0..total {
        let due = ticker.tick().await;
        let (poster, errors, in_flight, max_in_flight, max_lag_ns) = (
            poster.clone(),
            errors.clone(),
            in_flight.clone(),
            max_in_flight.clone(),
            max_lag_ns.clone(),
        );
        posts.spawn(async move {
            let lag = due.elapsed().as_nanos().try_into().unwrap_or(u64::MAX);
            max_lag_ns.fetch_max(lag, Ordering::Relaxed);
            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            max_in_flight.fetch_max(now, Ordering::Relaxed);
            let sent = Instant::now();
            let posted = poster.post().await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            match posted.and_then(|body| event_id(&body)) {
                Ok(id) => Some((id, clock.ns(sent))),
                Err(e) => {
                    errors.note(e);
                    None
                }
            }
        });
    }
    let mut sends = Vec::with_capacity(total as usize);
    while let Some(joined) = posts.join_next().await {
        if let Some(send) = joined.context("a posting task failed")? {
            sends.push(send);
        }
    }
    Ok(LoadReport {
        accepted: sends.len() as u64,
        sends,
        start_ns,
        end_ns: monotonic_ns(),
        max_send_lag_ns: max_lag_ns.load(Ordering::Relaxed),
        max_in_flight: max_in_flight.load(Ordering::Relaxed),
        ..LoadReport::default()
    })
}
