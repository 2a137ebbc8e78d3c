//! Prometheus metrics (`GET /metrics`): what the engine and the API count as they go, and
//! what a scrape reads from the store and the engine.
//!
//! The delivery path only touches atomics: every labelled series it uses is created up front
//! and kept as a handle, so an attempt costs a few relaxed increments and no lock. Labels are
//! bounded: outcomes, status classes, route templates, pool names; never tenant or webhook ids.

mod histogram;

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::delivery::{AttemptOutcome, Next};
use crate::domain::time::Timestamp;
use crate::store::{Change, QueueDepth, Store};
pub use histogram::Histogram;

/// The content type of the exposition (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a queue count read from the database serves scrapes: several Prometheus servers
/// scraping at once cost one query.
const QUEUE_DEPTH_TTL: Duration = Duration::from_secs(2);

/// Attempt durations, in milliseconds: from a fast local receiver to the longest timeout.
const DURATION_BOUNDS_MS: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];
/// From an event's acceptance to its first attempt, in milliseconds (the target is well
/// under 2 s).
const LAG_BOUNDS_MS: &[u64] = &[
    1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
];

/// Response classes of an attempt; `error` is no response at all (timeout, refused, TLS).
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

/// An API request: the method (known ones only), the matched route template and the status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

/// Every metric this node exposes. One per server, shared by the engine and the API.
pub struct Metrics {
    registry: Registry,
    events_accepted: Counter,
    succeeded: Counter,
    failed: Counter,
    /// One per entry of [`STATUS_CLASSES`].
    attempts: [Counter; 6],
    attempt_duration: Histogram,
    first_attempt_lag: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    deleted_logs: Counter,
    deleted_events: Counter,
    recovered: Counter,
    /// One per kind of [`Change`]: webhook, api_key, event_types, resync.
    changes_heard: [Counter; 4],
    // Read at scrape time.
    queue: Family<StateLabel, Gauge>,
    disabled_webhooks: Family<ReasonLabel, Gauge>,
    in_flight: Gauge,
    queued_here: Gauge,
    recoveries_running: Gauge,
    db_connections: Family<PoolLabels, Gauge>,
    db_max_connections: Family<PoolLabel, Gauge>,
    depth: tokio::sync::Mutex<Option<(Instant, QueueDepth)>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let events_accepted = Counter::default();
        registry.register(
            "events_accepted",
            "Events accepted (stored with their deliveries); idempotent repeats not counted",
            events_accepted.clone(),
        );
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries ended on this node, by outcome: succeeded, or failed once retries ran out",
            deliveries.clone(),
        );
        let outcome = |outcome| deliveries.get_or_create_owned(&OutcomeLabel { outcome });
        let (succeeded, failed) = (outcome("succeeded"), outcome("failed"));
        let attempts_family = Family::<ClassLabel, Counter>::default();
        registry.register(
            "attempts",
            "Delivery attempts made by this node, by response status class (error: no response)",
            attempts_family.clone(),
        );
        let attempts = STATUS_CLASSES
            .map(|status_class| attempts_family.get_or_create_owned(&ClassLabel { status_class }));
        let attempt_duration = Histogram::new(DURATION_BOUNDS_MS);
        registry.register_with_unit(
            "attempt_duration",
            "Time from sending an attempt to its outcome",
            Unit::Seconds,
            attempt_duration.clone(),
        );
        let first_attempt_lag = Histogram::new(LAG_BOUNDS_MS);
        registry.register_with_unit(
            "first_attempt_lag",
            "Time from an event's acceptance to the first attempt of each of its deliveries",
            Unit::Seconds,
            first_attempt_lag.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let deleted = Family::<KindLabel, Counter>::default();
        registry.register(
            "retention_deleted_rows",
            "Rows deleted by retention on this node: attempt logs, and events with their deliveries",
            deleted.clone(),
        );
        let kind = |kind| deleted.get_or_create_owned(&KindLabel { kind });
        let (deleted_logs, deleted_events) = (kind("logs"), kind("events"));
        let recovered = Counter::default();
        registry.register(
            "recovered_deliveries",
            "Failed deliveries queued again by recoveries this node moved on",
            recovered.clone(),
        );
        let recoveries_running = Gauge::default();
        registry.register(
            "recoveries_running",
            "Recoveries running in the database (all nodes)",
            recoveries_running.clone(),
        );
        let heard = Family::<KindLabel, Counter>::default();
        registry.register(
            "changes_heard",
            "Changes this node heard of from the database and applied (PostgreSQL): webhook, \
             api_key and event_types changes made on any node, and resync each time the connection that hears \
             them (re)connected, when the node dropped its queue and cached keys",
            heard.clone(),
        );
        let changes_heard = ["webhook", "api_key", "event_types", "resync"]
            .map(|kind| heard.get_or_create_owned(&KindLabel { kind }));
        let queue = Family::<StateLabel, Gauge>::default();
        registry.register(
            "queue_deliveries",
            "Pending deliveries in the database (all nodes): due (waiting for a node), \
             scheduled (a retry not yet due), leased (claimed by a node)",
            queue.clone(),
        );
        let disabled_webhooks = Family::<ReasonLabel, Gauge>::default();
        registry.register(
            "webhooks_disabled",
            "Disabled webhooks (all tenants, operational ones included) by reason: manual \
             (switched off), gone (410 Gone), failing (disable_after of continuous failure)",
            disabled_webhooks.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "attempts_in_flight",
            "Delivery attempts running on this node",
            in_flight.clone(),
        );
        let queued_here = Gauge::default();
        registry.register(
            "local_queue_deliveries",
            "Deliveries leased to this node, waiting for a worker",
            queued_here.clone(),
        );
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database connections open in this node's pools, by state: in_use, idle",
            db_connections.clone(),
        );
        let db_max_connections = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "db_max_connections",
            "Largest size of each of this node's database pools",
            db_max_connections.clone(),
        );
        Metrics {
            registry,
            events_accepted,
            succeeded,
            failed,
            attempts,
            attempt_duration,
            first_attempt_lag,
            http_requests,
            deleted_logs,
            deleted_events,
            recovered,
            changes_heard,
            queue,
            disabled_webhooks,
            in_flight,
            queued_here,
            recoveries_running,
            db_connections,
            db_max_connections,
            depth: tokio::sync::Mutex::new(None),
        }
    }

    pub fn event_accepted(&self) {
        self.events_accepted.inc();
    }

    /// One attempt made by the engine; `first_since` is when its delivery was made, for the
    /// first attempt of a delivery's first chain (a retried or recovered delivery's new
    /// chain is not what the lag measures).
    pub fn attempt(&self, first_since: Option<Timestamp>, outcome: &AttemptOutcome, next: Next) {
        let class = match (&outcome.error, outcome.response_status) {
            (None, Some(status @ 100..=599)) => usize::from(status / 100 - 1),
            _ => 5,
        };
        self.attempts[class].inc();
        self.attempt_duration
            .observe_millis(u64::try_from(outcome.response_time_ms).unwrap_or(0));
        if let Some(accepted) = first_since {
            let lag = outcome.started_at.millis() - accepted.millis();
            self.first_attempt_lag
                .observe_millis(u64::try_from(lag).unwrap_or(0));
        }
        match next {
            Next::Succeeded => self.succeeded.inc(),
            Next::Failed => self.failed.inc(),
            Next::RetryAt(_) => 0,
        };
    }

    /// An API request answered. `route` is the matched template, never the raw path.
    pub fn http_request(&self, method: &'static str, route: &str, status: u16) {
        let labels = HttpLabels {
            method,
            route: route.to_owned(),
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
    }

    /// A change heard of from the database was applied.
    pub fn change_heard(&self, change: &Change) {
        let kind = match change {
            Change::Webhook(_) => 0,
            Change::ApiKeyRevoked(_) => 1,
            Change::EventTypes => 2,
            Change::Resync => 3,
        };
        self.changes_heard[kind].inc();
    }

    pub fn recovered(&self, deliveries: u64) {
        self.recovered.inc_by(deliveries);
    }

    pub fn retention_deleted(&self, logs: u64, events: u64) {
        self.deleted_logs.inc_by(logs);
        self.deleted_events.inc_by(events);
    }

    /// The exposition: counters as they stand, gauges read now (the queue counts at most
    /// [`QUEUE_DEPTH_TTL`] old). `in_flight` and `queued` come from this node's engine.
    pub async fn render(&self, store: &dyn Store, in_flight: usize, queued: usize) -> String {
        if let Some(depth) = self.queue_depth(store).await {
            for (state, n) in [
                ("due", depth.due),
                ("scheduled", depth.scheduled),
                ("leased", depth.leased),
            ] {
                self.queue.get_or_create(&StateLabel { state }).set(n);
            }
            for (reason, n) in ["manual", "gone", "failing"]
                .into_iter()
                .zip(depth.disabled_webhooks)
            {
                self.disabled_webhooks
                    .get_or_create(&ReasonLabel { reason })
                    .set(n);
            }
        }
        match store.running_recoveries().await {
            Ok(n) => {
                self.recoveries_running.set(n);
            }
            Err(error) => tracing::warn!(%error, "cannot count running recoveries for /metrics"),
        }
        self.in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.queued_here
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        for pool in store.pool_usage() {
            let labels = |state| PoolLabels {
                pool: pool.name,
                state,
            };
            let idle = i64::try_from(pool.idle).unwrap_or(i64::MAX);
            let in_use = i64::from(pool.size) - idle;
            self.db_connections.get_or_create(&labels("idle")).set(idle);
            self.db_connections
                .get_or_create(&labels("in_use"))
                .set(in_use.max(0));
            self.db_max_connections
                .get_or_create(&PoolLabel { pool: pool.name })
                .set(i64::from(pool.max));
        }
        let mut text = String::new();
        // Writing to a String cannot fail; an encoding error would be a bug in a label.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }

    /// The store's queue counts, cached briefly; `None` when the database cannot answer (the
    /// gauges then keep their last values, and the failure is logged).
    async fn queue_depth(&self, store: &dyn Store) -> Option<QueueDepth> {
        let mut cached = self.depth.lock().await;
        if let Some((at, depth)) = *cached
            && at.elapsed() < QUEUE_DEPTH_TTL
        {
            return Some(depth);
        }
        match store.queue_depth(Timestamp::now()).await {
            Ok(depth) => {
                *cached = Some((Instant::now(), depth));
                Some(depth)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot count the delivery queue for /metrics");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id;

    #[test]
    fn attempts_are_counted_by_class_and_deliveries_by_outcome() {
        let m = Metrics::new();
        let at = Timestamp(1_700_000_000_000);
        let event = id::new_at(id::EVENT, at);
        let ok = AttemptOutcome {
            started_at: at.plus_millis(40),
            response_status: Some(204),
            response_time_ms: 12,
            ..AttemptOutcome::default()
        };
        let refused = AttemptOutcome {
            started_at: at.plus_millis(900),
            error: Some("connection refused".into()),
            ..AttemptOutcome::default()
        };
        m.attempt(id::time_of(&event), &ok, Next::Succeeded);
        m.attempt(None, &refused, Next::Failed);
        assert_eq!(m.attempts[1].get(), 1);
        assert_eq!(m.attempts[5].get(), 1);
        assert_eq!((m.succeeded.get(), m.failed.get()), (1, 1));
        assert_eq!(m.attempt_duration.count(), 2);
        assert_eq!(m.first_attempt_lag.count(), 1, "only first attempts");
    }
}
