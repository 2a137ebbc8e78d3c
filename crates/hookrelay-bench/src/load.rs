//! The load generator of the separate-process mode, run as `hookrelay-bench load …` (a
//! hidden subcommand) by the bench itself. It posts the bench's event to one URL, with
//! `--concurrency` clients sharing one `reqwest::Client`, and prints one JSON [`LoadReport`]
//! on stdout when done.
//!
//! The same generator measures the ceiling: pointed at the receiver (`--webhook-ids`, so each
//! request carries a fresh `webhook-id` and the receiver books it as it books a delivery),
//! with the same body, headers and clients as against hookrelay.
//!
//! Its loops ([`back_to_back`], [`at_rate`]) are also those of the in-process phases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::child::Clock;
use crate::phases::{event_body, event_id};

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
    /// [`monotonic_ns`](crate::child::monotonic_ns) at the first post and after the last answer.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Rate mode: (event id, [`monotonic_ns`](crate::child::monotonic_ns) just before its POST) per accepted event.
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

impl Target for Poster {
    /// One URL: the turn does not matter.
    async fn post(&self, _turn: usize) -> Result<Bytes, String> {
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
    let clock = Clock::now();
    let posted = match (args.shape.seconds, args.shape.count, args.shape.rate) {
        (Some(seconds), None, None) => {
            let deadline = Instant::now() + seconds_arg(seconds)?;
            back_to_back(&poster, args.concurrency, move |_| {
                Instant::now() < deadline
            })
            .await?
        }
        (None, Some(count), None) => {
            back_to_back(&poster, args.concurrency, move |n| n < count).await?
        }
        (None, None, Some(rate)) => {
            let seconds = seconds_arg(args.shape.for_seconds.unwrap_or(1.0))?;
            at_rate(&poster, rate, seconds).await?
        }
        _ => anyhow::bail!("give exactly one of --seconds, --count, --rate"),
    };
    Ok(LoadReport {
        accepted: posted.accepted,
        errors: posted.errors,
        first_error: posted.first_error,
        start_ns: clock.ns(posted.start),
        end_ns: clock.ns(posted.end),
        sends: posted
            .sends
            .into_iter()
            .map(|(id, sent)| (id, clock.ns(sent)))
            .collect(),
        max_send_lag_ns: posted
            .max_send_lag
            .as_nanos()
            .try_into()
            .unwrap_or(u64::MAX),
        max_in_flight: posted.max_in_flight,
    })
}

fn seconds_arg(seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|e| anyhow::anyhow!("seconds: {e}"))
}

// ---------------------------------------------------------------------------------------
// The load loops, shared with the in-process phases.

/// Where the load goes: one post, the answer's body on the expected status, a description
/// otherwise. `turn` lets a target of several nodes take them in turn.
pub trait Target: Send + Sync + 'static {
    fn post(&self, turn: usize) -> impl Future<Output = Result<Bytes, String>> + Send;
}

/// What a run of posts did.
#[derive(Debug)]
pub struct Posted {
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Just before the first post, and after the last answer.
    pub start: Instant,
    pub end: Instant,
    /// [`at_rate`] only: (event id, the moment just before its POST) per accepted event.
    pub sends: Vec<(String, Instant)>,
    /// [`at_rate`] only: how far a post started behind its schedule at worst.
    pub max_send_lag: Duration,
    /// [`at_rate`] only: most posts awaiting their answer at once.
    pub max_in_flight: u64,
}

/// Load-generator errors: how many, and the first one, to show.
#[derive(Default)]
struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    fn note(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(what);
    }

    fn take(&self) -> (u64, Option<String>) {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        (self.count.load(Ordering::Relaxed), first)
    }
}

/// `concurrency` clients post back to back while `more(n)` holds for the `n`-th post
/// overall. Client `c`'s `k`-th post is turn `c + k`: each client takes a target's nodes in
/// turn, starting at its own.
pub async fn back_to_back<T: Target>(
    target: &Arc<T>,
    concurrency: usize,
    more: impl Fn(u64) -> bool + Send + Sync + Clone + 'static,
) -> anyhow::Result<Posted> {
    let errors = Arc::new(Errors::default());
    let accepted = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut clients = JoinSet::new();
    for client in 0..concurrency {
        let (target, errors, accepted, next, more) = (
            target.clone(),
            errors.clone(),
            accepted.clone(),
            next.clone(),
            more.clone(),
        );
        clients.spawn(async move {
            let mut turn = client;
            while more(next.fetch_add(1, Ordering::Relaxed)) {
                let posted = target.post(turn).await;
                turn = turn.wrapping_add(1);
                match posted {
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
    let end = Instant::now();
    let (errors, first_error) = errors.take();
    Ok(Posted {
        accepted: accepted.load(Ordering::Relaxed),
        errors,
        first_error,
        start,
        end,
        sends: Vec::new(),
        max_send_lag: Duration::ZERO,
        max_in_flight: 0,
    })
}

/// How many posts [`at_rate`] makes: `rate` per second for `seconds`, at least one.
pub fn sends_at(rate: u32, seconds: Duration) -> u64 {
    (f64::from(rate) * seconds.as_secs_f64()).round().max(1.0) as u64
}

/// One post per tick of a steady schedule, each in its own task so a slow answer never
/// delays the next send (the `n`-th send is turn `n`); records when each accepted event was
/// sent, by the id in its answer.
pub async fn at_rate<T: Target>(
    target: &Arc<T>,
    rate: u32,
    seconds: Duration,
) -> anyhow::Result<Posted> {
    let total = sends_at(rate, seconds);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let errors = Arc::new(Errors::default());
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start.into(), period);
    // Late ticks fire at once until the schedule is caught up: the rate holds on average.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let max_lag_ns = Arc::new(AtomicU64::new(0));
    let mut posts = JoinSet::new();
    for send in 0..total {
        // The tick's instant is when this send was due.
        let due = ticker.tick().await;
        let (target, errors, in_flight, max_in_flight, max_lag_ns) = (
            target.clone(),
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
            let posted = target.post(send as usize).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            match posted.and_then(|body| event_id(&body)) {
                Ok(id) => Some((id, sent)),
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
    let end = Instant::now();
    let (errors, first_error) = errors.take();
    Ok(Posted {
        accepted: sends.len() as u64,
        errors,
        first_error,
        start,
        end,
        sends,
        max_send_lag: Duration::from_nanos(max_lag_ns.load(Ordering::Relaxed)),
        max_in_flight: max_in_flight.load(Ordering::Relaxed),
    })
}
