//! The delivery engine: ingest with group commit, a durable queue in the database leased to
//! this node, local lanes served by a worker pool, attempts recorded in batches, and a poller
//! that picks up due retries and anything a crashed node left behind.
//!
//! Flow: `ingest` → store (event + deliveries, leased here when there is room) → dispatcher
//! lanes → worker makes the attempt → recorder writes log rows, states and counters → the
//! poller claims retries when they fall due.

mod attempt;
mod dispatcher;
mod ingest;
mod poller;
mod recorder;
mod recovery;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::delivery::{AttemptOutcome, AttemptRecord, Job, Next, Target};
use crate::domain::egress::EgressPolicy;
use crate::domain::event::NewEvent;
use crate::domain::health::{self, HealthRules};
use crate::domain::id::{self, AttemptId, DeliveryId, WebhookId};
use crate::domain::retry::RetryPolicy;
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;
use crate::egress;
use crate::metrics::Metrics;
use crate::store::{LeasePlan, LogEntry, Store};

pub use attempt::USER_AGENT_VALUE;
pub use dispatcher::Limits;
pub use ingest::{Accepted, IngestError};

/// Delivery settings, server-wide.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub retry: RetryPolicy,
    /// Attempts in flight on this node, all webhooks together.
    pub concurrency: usize,
    pub limits: Limits,
    /// How long a claim holds a delivery; renewed before an attempt that would outlive it.
    pub lease: Duration,
    /// Fallback polling interval for due retries and abandoned work.
    pub poll_interval: Duration,
    pub connect_timeout: Duration,
    /// Bytes of each response body kept in the attempt log.
    pub response_body_cap: usize,
    /// How long shutdown waits for in-flight attempts.
    pub shutdown_grace: Duration,
    pub ingest_batch: usize,
    /// Which addresses webhooks may reach.
    pub targets: Arc<EgressPolicy>,
    /// The hosts file webhook names are looked up in before DNS (`/etc/hosts`).
    pub hosts_file: std::path::PathBuf,
    /// When webhooks become failing and disabled (`domain/health.rs`).
    pub health: HealthRules,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry: RetryPolicy::default(),
            concurrency: 128,
            limits: Limits {
                per_webhook: 16,
                per_webhook_queue: 2_000,
                capacity: 20_000,
            },
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            response_body_cap: 8 * 1024,
            shutdown_grace: Duration::from_secs(30),
            ingest_batch: 512,
            targets: Arc::new(EgressPolicy::default()),
            hosts_file: egress::SYSTEM_HOSTS_FILE.into(),
            health: HealthRules::default(),
        }
    }
}

/// State the engine's tasks share.
struct Shared {
    store: Arc<dyn Store>,
    node: String,
    config: DeliveryConfig,
    dispatcher: dispatcher::Dispatcher,
    sender: attempt::Sender,
    /// Resolves webhook hosts, for the delivery client and for checks at create/update.
    resolver: Arc<egress::Resolver>,
    records: mpsc::Sender<recorder::ToRecorder>,
    metrics: Arc<Metrics>,
    /// Wakes the poller early: retries were scheduled, room was freed, or another node left
    /// work for anyone.
    poll: Arc<Notify>,
    /// Wakes the recovery task: a recovery was started here.
    recoveries: Notify,
    /// Set when work was left in the database for lack of room, so freed room should wake
    /// the poller; clear otherwise, so the hot path does not poll for nothing.
    overflowed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn lease_plan(&self) -> LeasePlan {
        let (lease, skip_webhooks) = self.dispatcher.saturation();
        if !lease || !skip_webhooks.is_empty() {
            self.overflowed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        LeasePlan {
            node: self.node.clone(),
            until: Timestamp::now().plus_millis(self.config.lease.as_millis() as i64),
            lease,
            skip_webhooks,
        }
    }

    /// Queues jobs leased by a claim that began at change epoch `since`; any refused (shutting
    /// down, or their webhook changed meanwhile) are given back at once.
    async fn queue(&self, jobs: Vec<Job>, since: u64) {
        if jobs.is_empty() {
            return;
        }
        let refused = self.dispatcher.push(jobs, since);
        if !refused.is_empty() {
            let ids: Vec<DeliveryId> = refused.into_iter().map(|j| j.delivery_id).collect();
            self.release(ids).await;
        }
    }

    async fn release(&self, ids: Vec<DeliveryId>) {
        if ids.is_empty() {
            return;
        }
        if let Err(error) = self.store.release_leases(&ids, &self.node).await {
            // The leases expire by themselves; only the delay grows.
            tracing::warn!(%error, count = ids.len(), "could not give leases back");
        }
    }
}

/// A running engine. Cloning shares it.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    ingest: mpsc::Sender<ingest::Request>,
    tasks: Arc<tokio::sync::Mutex<Option<Tasks>>>,
    stop_polling: CancellationToken,
}

struct Tasks {
    workers: JoinSet<()>,
    ingest: tokio::task::JoinHandle<()>,
    recorder: tokio::task::JoinHandle<()>,
    poller: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    recovery: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// Starts the engine's tasks on the current runtime; it counts what it does in `metrics`.
    pub async fn start(
        store: Arc<dyn Store>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Engine> {
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::info!(released, "resuming deliveries left by the previous run");
        }
        let (records_tx, records_rx) = mpsc::channel(config.ingest_batch.max(1024) * 4);
        let (ingest_tx, ingest_rx) = mpsc::channel(config.ingest_batch * 4);
        let resolver = Arc::new(egress::Resolver::new(&config.hosts_file)?);
        let shared = Arc::new(Shared {
            node: id::new("node"),
            sender: attempt::Sender::new(
                config.connect_timeout,
                config.response_body_cap,
                config.targets.clone(),
                resolver.clone(),
            )?,
            resolver,
            dispatcher: dispatcher::Dispatcher::new(config.limits)
                .with_paced_horizon(config.lease / 2),
            records: records_tx,
            metrics,
            poll: Arc::new(Notify::new()),
            recoveries: Notify::new(),
            overflowed: std::sync::atomic::AtomicBool::new(false),
            store,
            config,
        });
        shared
            .store
            .heartbeat(&shared.node, Timestamp::now())
            .await?;
        shared.store.watch_for_work(shared.poll.clone()).await?;
        let stop_polling = CancellationToken::new();
        let mut workers = JoinSet::new();
        for _ in 0..shared.config.concurrency.max(1) {
            workers.spawn(work(shared.clone()));
        }
        let pacing = shared.clone();
        workers.spawn(async move { pacing.dispatcher.pace().await });
        let tasks = Tasks {
            workers,
            ingest: tokio::spawn(ingest::run(
                shared.clone(),
                ingest_rx,
                shared.config.ingest_batch,
            )),
            recorder: tokio::spawn(recorder::record(shared.clone(), records_rx)),
            poller: tokio::spawn(poller::poll(shared.clone(), stop_polling.clone())),
            heartbeat: tokio::spawn(poller::heartbeat(shared.clone(), stop_polling.clone())),
            recovery: tokio::spawn(recovery::run(shared.clone(), stop_polling.clone())),
        };
        Ok(Engine {
            shared,
            ingest: ingest_tx,
            tasks: Arc::new(tokio::sync::Mutex::new(Some(tasks))),
            stop_polling,
        })
    }

    /// Stores the event durably with its deliveries, then answers. Deliveries start at once.
    pub async fn ingest(&self, event: NewEvent) -> Result<Accepted, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.ingest
            .send(ingest::Request { event, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Several events at once: all are handed to the group commit before any answer is
    /// awaited, so they share transactions. Answers keep the input order.
    pub async fn ingest_many(&self, events: Vec<NewEvent>) -> Vec<Result<Accepted, IngestError>> {
        let mut answers = Vec::with_capacity(events.len());
        for event in events {
            let (reply, answer) = oneshot::channel();
            let sent = self.ingest.send(ingest::Request { event, reply }).await;
            answers.push(sent.ok().map(|()| answer));
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Some(answer) => answer.await.unwrap_or(Err(IngestError::ShuttingDown)),
                None => Err(IngestError::ShuttingDown),
            });
        }
        results
    }

    /// A webhook's settings changed or it was deleted (here, or on another node): queued work
    /// made with the old settings is handed back to the database, to be claimed again with the
    /// new ones (or held, if the webhook is now inactive). Attempts in flight go on.
    pub async fn webhook_changed(&self, webhook_id: &WebhookId) {
        let ids = self.shared.dispatcher.drop_webhook(webhook_id);
        self.shared.release(ids).await;
        self.shared.poll.notify_one();
    }

    /// Changes may have been missed (the connection that hears of them was lost): all queued
    /// work is handed back, to be claimed again with the settings the database holds now.
    pub async fn resync(&self) {
        let ids = self.shared.dispatcher.drop_all();
        self.shared.release(ids).await;
        self.shared.poll.notify_one();
    }

    /// Deliveries were queued in the database by a use case (a retry, a replay): claim them
    /// now rather than at the next poll.
    pub fn work_queued(&self) {
        self.shared.poll.notify_one();
    }

    /// A recovery was started: begin moving it on now.
    pub fn recovery_started(&self) {
        self.shared.recoveries.notify_one();
    }

    /// The server's retry timing (webhooks' schedules are checked against its cap).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.shared.config.retry
    }

    /// This node's id, as its leases and heartbeats name it.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// One signed attempt, now, outside the queue: no retries, no counters; logged as a test.
    /// Sent whatever the webhook's filter says, and answers with whether the filter would
    /// have let such an event through (`None`: no filter).
    pub async fn test_send(
        &self,
        webhook: &Webhook,
        event_type: &str,
        data: &serde_json::value::RawValue,
    ) -> Result<(AttemptId, AttemptOutcome, Option<bool>), crate::store::StoreError> {
        let now = Timestamp::now();
        let event_id = id::new_at(id::EVENT, now);
        let body = crate::domain::event::envelope(
            &event_id,
            event_type,
            webhook.tenant_id.as_str(),
            now,
            data,
        );
        let filter_matched = webhook.filter.as_ref().map(|filter| {
            // The envelope was just written from valid JSON, so it reads back.
            serde_json::from_str(&body).is_ok_and(|envelope| filter.matches(&envelope))
        });
        let target = Target {
            // A test send is one request: no pacing, no retry.
            rate_limit: None,
            retries: crate::domain::retry::Retries::Backoff(0),
            ..webhook.target(now)
        };
        let message = attempt::Message {
            event_id: &event_id,
            event_type,
            attempt: 1,
            body: Arc::from(body.as_str()),
        };
        let outcome = self.shared.sender.send(&target, message).await;
        let entry = LogEntry {
            id: AttemptId::new_at(outcome.started_at),
            tenant_id: webhook.tenant_id.clone(),
            webhook_id: webhook.id.clone(),
            delivery_id: None,
            event_id: None,
            event_type: event_type.to_owned(),
            payload: body,
            request_headers: Some(outcome.request_headers.clone()),
            response_status: outcome.response_status.map(i64::from),
            response_body: outcome.response_body.clone(),
            response_body_truncated: outcome.response_body_truncated,
            response_time_ms: Some(outcome.response_time_ms),
            error_message: outcome.error.clone(),
            attempt_count: 1,
            is_success: outcome.is_success(),
            is_test: true,
            created_at: outcome.started_at,
        };
        self.shared.store.insert_test_log(&entry).await?;
        Ok((entry.id, outcome, filter_matched))
    }

    /// The resolver deliveries use, so that checks at create/update see what they will see.
    pub fn resolver(&self) -> &egress::Resolver {
        &self.shared.resolver
    }

    /// Stops: no new work, in-flight attempts finish within the grace period and are
    /// recorded, queued work is handed back. Call after the HTTP server has stopped.
    pub async fn shutdown(&self) {
        let Some(mut tasks) = self.tasks.lock().await.take() else {
            return;
        };
        self.stop_polling.cancel();
        let _ = (&mut tasks.poller).await;
        let _ = (&mut tasks.heartbeat).await;
        let _ = (&mut tasks.recovery).await;
        let queued = self.shared.dispatcher.close();
        self.shared.release(queued).await;
        let grace = self.shared.config.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            while tasks.workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                ?grace,
                "attempts still running after the grace period; abandoning them (they resume on the next start)"
            );
            tasks.workers.abort_all();
            while tasks.workers.join_next().await.is_some() {}
        }
        // The HTTP server has drained, so every ingest was answered and the task is idle.
        tasks.ingest.abort();
        // Records travel in order: once the flush is acknowledged, all attempts are written.
        let (done, flushed) = oneshot::channel();
        if self
            .shared
            .records
            .send(recorder::ToRecorder::Flush(done))
            .await
            .is_ok()
        {
            let _ = flushed.await;
        }
        tasks.recorder.abort();
        if let Err(error) = self.shared.store.retire(&self.shared.node).await {
            tracing::warn!(%error, "could not retire this node's heartbeat");
        }
    }

    /// Deliveries queued on this node, waiting for a worker.
    pub fn queued(&self) -> usize {
        self.shared.dispatcher.queued()
    }

    /// Attempts running on this node.
    pub fn in_flight(&self) -> usize {
        self.shared.dispatcher.in_flight()
    }
}

/// A worker: takes jobs until the dispatcher closes.
async fn work(shared: Arc<Shared>) {
    while let Some(job) = shared.dispatcher.next().await {
        let webhook_id = job.target.webhook_id.clone();
        let delivery_id = job.delivery_id.clone();
        // Debug level: free unless asked for (`RUST_LOG`, or the OTLP export, which takes
        // hookrelay's debug spans).
        let span = tracing::debug_span!(
            "delivery.attempt",
            delivery_id = %delivery_id,
            event_id = %job.event_id,
            webhook_id = %webhook_id,
            attempt = job.attempt,
            status = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let record = attempt_job(&shared, job).instrument(span.clone()).await;
        if let Some(record) = &record
            && !span.is_disabled()
        {
            if let Some(status) = record.outcome.response_status {
                span.record("status", status);
            }
            let outcome = match record.next {
                Next::Succeeded => "succeeded",
                Next::Failed => "failed",
                Next::RetryAt(_) => "retry",
            };
            span.record("outcome", outcome);
        }
        shared.dispatcher.done(&webhook_id, &delivery_id);
        if let Some(record) = record
            && shared
                .records
                .send(recorder::ToRecorder::Record(record))
                .await
                .is_err()
        {
            break;
        }
    }
}

/// Makes the job's attempt, first renewing its lease if the attempt could outlive it.
async fn attempt_job(shared: &Shared, mut job: Job) -> Option<AttemptRecord> {
    let margin = job.target.timeout + Duration::from_secs(10);
    let now = Timestamp::now();
    if job.leased_until < now.plus_millis(margin.as_millis() as i64) {
        let until = now.plus_millis(shared.config.lease.max(margin * 2).as_millis() as i64);
        match shared
            .store
            .renew_lease(&job.delivery_id, &shared.node, until)
            .await
        {
            Ok(true) => job.leased_until = until,
            Ok(false) => return None, // cancelled, or taken over by another node
            Err(error) => {
                tracing::warn!(%error, delivery = %job.delivery_id, "cannot renew lease; leaving the delivery for later");
                return None;
            }
        }
    }
    let message = attempt::Message {
        event_id: job.event_id.as_str(),
        event_type: &job.event_type,
        attempt: job.attempt,
        body: job.body.clone(),
    };
    let outcome = shared.sender.send(&job.target, message).await;
    let recorded_at = Timestamp::now();
    let unit: f64 = rand::thread_rng().r#gen();
    // A 410 Gone disables the webhook as this attempt is recorded; the delivery stays
    // pending, due at once, and so is held until the webhook is enabled again.
    let next = if health::is_gone(&outcome) {
        Next::RetryAt(recorded_at)
    } else {
        Next::after(
            &outcome,
            job.attempt,
            &job.target.retries,
            &shared.config.retry,
            recorded_at,
            unit,
        )
    };
    // Counted before the record is sent, so a state read back through the API is never
    // ahead of the counters.
    // The lag is from the delivery's making, which its id embeds.
    let first_since = (job.attempt == 1 && !job.counted)
        .then(|| id::time_of(job.delivery_id.as_str()))
        .flatten();
    shared.metrics.attempt(first_since, &outcome, next);
    Some(AttemptRecord {
        log_id: AttemptId::new_at(outcome.started_at),
        job,
        outcome,
        next,
        recorded_at,
    })
}
