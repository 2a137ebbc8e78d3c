//! The phases. Each one creates a fresh database, starts its own receiver and its server(s)
//! (`--nodes` of them on the one database), sets them up through the API, drives load, waits
//! for deliveries, stops everything and removes the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::database::{Backend, Database};
use crate::load;
use crate::receiver::{Counts, Receiver};
use crate::server::{self, Server};

/// What every phase shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    /// How long a phase waits for outstanding deliveries after its last post.
    pub wait_timeout: Duration,
    /// Where each phase's database is created.
    pub backend: Backend,
    /// hookrelay servers sharing the phase's database (more than one on PostgreSQL only).
    pub nodes: usize,
    /// PostgreSQL pool size of each node.
    pub db_max_connections: u32,
    /// Whether the servers count API requests per key and per address (at limits too high
    /// to refuse anything); off by default, to measure the engine alone.
    pub api_limits: bool,
}

/// Size of the whole delivered envelope the event body is padded towards.
const TARGET_ENVELOPE_BYTES: usize = 300;
/// What hookrelay adds around `data`: id, type, tenant id, timestamp and the JSON punctuation
/// (`{"id":"evt_…","type":"message.new","tenant_id":"ten_…","created_at":"…","data":…}`).
const ENVELOPE_OVERHEAD_BYTES: usize = 153;

/// A realistic `message.new` event whose delivered envelope is about 300 bytes: the text is
/// padded until `data` has the size that leaves.
pub fn event_body() -> Bytes {
    let target_data = TARGET_ENVELOPE_BYTES - ENVELOPE_OVERHEAD_BYTES;
    let data = |text: &str| {
        json!({
            "message_id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNF",
            "conversation_id": "conv_8f3a2c",
            "contact_id": "cnt_51b9e0",
            "text": text,
        })
    };
    let filler = "Hi! My order #48213 has not arrived yet, could you check? Thanks. ";
    let base = data("").to_string().len();
    let text: String = filler
        .chars()
        .cycle()
        .take(target_data.saturating_sub(base))
        .collect();
    Bytes::from(json!({"type": "message.new", "data": data(&text)}).to_string())
}

/// A receiver and one or more servers on one database, set up with `webhooks` webhooks, and
/// what posting needs.
struct Rig {
    receiver: Receiver,
    /// Node 0 is the one the setup went through.
    servers: Vec<Server>,
    client: reqwest::Client,
    /// `POST /api/v1/events` of each node, in node order.
    events_urls: Vec<String>,
    key: String,
    body: Bytes,
    /// Last, so that on a failed phase the servers are told to stop before it is dropped.
    database: Database,
}

impl Rig {
    async fn start(settings: &Settings, webhooks: usize) -> anyhow::Result<Arc<Rig>> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(settings.concurrency.max(1024))
            // Bounds every request, so no phase can hang on one.
            .timeout(Duration::from_secs(30))
            .build()?;
        let receiver = Receiver::start(webhooks).await?;
        // On any error below, what was started is dropped: servers are told to stop, and a
        // PostgreSQL database is dropped by its guard.
        let database = Database::create(&settings.backend).await?;
        let mut servers = Vec::with_capacity(settings.nodes);
        // One at a time: node 0 applies the migrations, the others find them done.
        for _ in 0..settings.nodes.max(1) {
            servers.push(
                Server::start(
                    &database.url,
                    settings.db_max_connections,
                    settings.api_limits,
                    &client,
                )
                .await?,
            );
        }
        let urls: Vec<String> = (0..webhooks).map(|i| receiver.url(i)).collect();
        let key = server::setup(&client, &servers[0].base, &urls).await?;
        Ok(Arc::new(Rig {
            events_urls: servers.iter().map(|s| s.url("/api/v1/events")).collect(),
            receiver,
            servers,
            client,
            key,
            body: event_body(),
            database,
        }))
    }

    fn nodes(&self) -> usize {
        self.events_urls.len()
    }

    /// Stops the servers (while the receiver still answers, so in-flight attempts finish),
    /// then the receiver, then removes the database; all of it even if a step fails.
    async fn stop(self: Arc<Self>) -> anyhow::Result<()> {
        let rig = Arc::into_inner(self).context("a load task outlived its phase")?;
        let mut stopped = Ok(());
        for (node, server) in rig.servers.into_iter().enumerate() {
            let result = server.stop().await.with_context(|| format!("node {node}"));
            stopped = stopped.and(result);
        }
        let received = rig.receiver.stop().await;
        let removed = rig.database.remove().await;
        stopped.and(received).and(removed)
    }
}

impl load::Target for Rig {
    /// One `POST /api/v1/events` to node `node % nodes`: the answer's body on 202, a
    /// description otherwise.
    async fn post(&self, node: usize) -> Result<Bytes, String> {
        let response = self
            .client
            .post(&self.events_urls[node % self.nodes()])
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if status == StatusCode::ACCEPTED {
            Ok(body)
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }
}

/// Phase "ingest".
#[derive(Debug)]
pub struct IngestResult {
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Deliveries that reached the receiver while the clients were posting.
    pub delivered: Counts,
}

impl IngestResult {
    pub fn accepted_per_second(&self) -> f64 {
        per_second(self.accepted, self.elapsed)
    }
}

/// `concurrency` clients post events back to back for `duration`, to one webhook.
pub async fn ingest(settings: &Settings, duration: Duration) -> anyhow::Result<IngestResult> {
    let rig = Rig::start(settings, 1).await?;
    let deadline = Instant::now() + duration;
    let posted = load::back_to_back(&rig, settings.concurrency, move |_| {
        Instant::now() < deadline
    })
    .await?;
    let delivered = rig.receiver.counts();
    rig.stop().await?;
    Ok(IngestResult {
        accepted: posted.accepted,
        errors: posted.errors,
        first_error: posted.first_error,
        elapsed: posted.end - posted.start,
        delivered,
    })
}

/// Phases "fan-out 1" and "fan-out 10".
#[derive(Debug)]
pub struct FanoutResult {
    pub webhooks: usize,
    pub events: u64,
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the first post to the last answer.
    pub posting: Duration,
    /// Deliveries owed: accepted events × webhooks.
    pub expected: u64,
    pub arrived: Counts,
    /// From the first post to the arrival of the last delivery (or to giving up).
    pub elapsed: Duration,
}

impl FanoutResult {
    pub fn complete(&self) -> bool {
        self.arrived.unique >= self.expected
    }

    pub fn deliveries_per_second(&self) -> f64 {
        per_second(self.arrived.unique, self.elapsed)
    }

    pub fn accepted_per_second(&self) -> f64 {
        per_second(self.accepted, self.posting)
    }
}

/// Posts `events` events with `concurrency` clients to `webhooks` webhooks, and times until
/// the receiver has every delivery.
pub async fn fanout(
    settings: &Settings,
    webhooks: usize,
    events: u64,
) -> anyhow::Result<FanoutResult> {
    let rig = Rig::start(settings, webhooks).await?;
    let posted = load::back_to_back(&rig, settings.concurrency, move |n| n < events).await?;
    let expected = posted.accepted * webhooks as u64;
    let arrived = rig.receiver.wait_for(expected, settings.wait_timeout).await;
    let elapsed = match arrived.last_unique_at {
        Some(last) if arrived.unique >= expected => last.duration_since(posted.start),
        _ => posted.start.elapsed(),
    };
    rig.stop().await?;
    Ok(FanoutResult {
        webhooks,
        events,
        accepted: posted.accepted,
        errors: posted.errors,
        first_error: posted.first_error,
        posting: posted.end - posted.start,
        expected,
        arrived,
        elapsed,
    })
}

/// Phase "latency @ rate".
#[derive(Debug)]
pub struct LatencyResult {
    pub rate: u32,
    pub sent: u64,
    pub accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Accepted events whose delivery arrived in time.
    pub arrived: u64,
    /// Post → arrival, sorted.
    pub latencies: Vec<Duration>,
    /// How far a post started behind its schedule at worst (load generator saturated).
    pub max_send_lag: Duration,
    /// Most posts awaiting their answer at once.
    pub max_in_flight: u64,
}

impl LatencyResult {
    /// The `q`-quantile (nearest rank) of the latencies.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = (q * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

/// Sends `rate` events per second for `seconds` to one webhook, each post in its own task so
/// a slow answer never delays the next send; measures post → arrival per event.
pub async fn latency(
    settings: &Settings,
    rate: u32,
    seconds: Duration,
) -> anyhow::Result<LatencyResult> {
    let rig = Rig::start(settings, 1).await?;
    let posted = load::at_rate(&rig, rate, seconds).await?;
    rig.receiver
        .wait_for(posted.accepted, settings.wait_timeout)
        .await;
    let mut latencies: Vec<Duration> = posted
        .sends
        .iter()
        .filter_map(|(id, sent)| {
            let arrived = rig.receiver.arrival(0, id)?;
            Some(arrived.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort_unstable();
    rig.stop().await?;
    Ok(LatencyResult {
        rate,
        sent: load::sends_at(rate, seconds),
        accepted: posted.accepted,
        errors: posted.errors,
        first_error: posted.first_error,
        arrived: latencies.len() as u64,
        latencies,
        max_send_lag: posted.max_send_lag,
        max_in_flight: posted.max_in_flight,
    })
}

/// The event id of a 202 answer; it is the `webhook-id` of every delivery of the event.
pub fn event_id(body: &[u8]) -> Result<String, String> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| format!("202 answer is not JSON: {e}"))?;
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("202 answer has no id: {answer}"))
}

pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}
