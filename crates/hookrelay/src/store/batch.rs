//! The batch algorithms every backend shares: ingest (idempotency, fan-out, leasing the new
//! deliveries) and recording attempts (states under the lease, log rows, counters once per
//! delivery). Backends supply only the SQL, through [`IngestTx`] and [`RecordTx`], each
//! implemented on one open transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use super::{Ingested, LeasePlan, LogEntry, StoreResult};
use crate::domain::delivery::{AttemptRecord, DeliveryState, Job, Next, Target};
use crate::domain::event::{IDEMPOTENCY_WINDOW_MS, NewEvent};
use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::domain::webhook::subscribes;

/// Rows per multi-row statement: every statement is a round trip, so rows go in bulk, kept
/// well under both backends' limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// An active webhook as fan-out sees it.
pub(crate) struct Subscriber {
    pub target: Arc<Target>,
    pub events: Vec<String>,
}

/// A delivery row to insert.
pub(crate) struct NewDelivery<'a> {
    pub id: String,
    pub event: &'a NewEvent,
    pub target: Arc<Target>,
    pub leased: bool,
}

/// An event that already holds an idempotency key.
pub(crate) struct KeyHolder {
    pub event_id: String,
    pub event_type: String,
    pub created_at: Timestamp,
    pub deliveries: usize,
}

#[async_trait]
pub(crate) trait IngestTx: Send {
    /// The event holding `key` for this tenant, if any.
    async fn key_holder(&mut self, tenant_id: &str, key: &str) -> StoreResult<Option<KeyHolder>>;
    /// Frees a key past its window, so a new event may take it.
    async fn free_key(&mut self, event_id: &str) -> StoreResult<()>;
    /// The tenant's active webhooks.
    async fn subscribers(&mut self, tenant_id: &str) -> StoreResult<Vec<Subscriber>>;
    async fn insert_events(&mut self, events: &[&NewEvent]) -> StoreResult<()>;
    async fn insert_deliveries(
        &mut self,
        rows: &[NewDelivery<'_>],
        plan: &LeasePlan,
    ) -> StoreResult<()>;
}

/// Runs one ingest batch inside `tx` (the caller commits). Answers per event, in order.
pub(crate) async fn ingest(
    tx: &mut impl IngestTx,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    let mut by_tenant: HashMap<&str, Vec<Subscriber>> = HashMap::new();
    let mut results: Vec<Ingested> = Vec::with_capacity(events.len());
    let mut fresh: Vec<&NewEvent> = Vec::with_capacity(events.len());
    let mut deliveries: Vec<NewDelivery<'_>> = Vec::new();
    // Keys taken earlier in this same batch: (tenant, key) → index in `events`/`results`.
    let mut batch_keys: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(key) = &event.idempotency_key {
            if let Some(&first) = batch_keys.get(&(event.tenant_id.as_str(), key.as_str())) {
                results.push(existing_from(&results[first], events[first].event_type));
                continue;
            }
            if let Some(holder) = tx.key_holder(&event.tenant_id, key).await? {
                if holder.created_at.millis() > event.created_at.millis() - IDEMPOTENCY_WINDOW_MS {
                    results.push(Ingested::Existing {
                        event_id: holder.event_id,
                        event_type: holder.event_type,
                        deliveries: holder.deliveries,
                    });
                    continue;
                }
                // Past the window: the key is free again; the old event keeps its data.
                tx.free_key(&holder.event_id).await?;
            }
            batch_keys.insert((&event.tenant_id, key), index);
        }
        if !by_tenant.contains_key(event.tenant_id.as_str()) {
            let found = tx.subscribers(&event.tenant_id).await?;
            by_tenant.insert(&event.tenant_id, found);
        }
        let subscribers = by_tenant
            .get(event.tenant_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        results.push(fan_out(event, subscribers, plan, &mut deliveries));
        fresh.push(event);
    }
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        tx.insert_events(chunk).await?;
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        tx.insert_deliveries(chunk, plan).await?;
    }
    Ok(results)
}

/// One delivery per matching subscriber; jobs for the ones this node leases.
fn fan_out<'a>(
    event: &'a NewEvent,
    subscribers: &[Subscriber],
    plan: &LeasePlan,
    deliveries: &mut Vec<NewDelivery<'a>>,
) -> Ingested {
    let shared = EventShare::new(&event.id, &event.tenant_id, event.event_type, &event.body);
    let mut count = 0;
    let mut jobs = Vec::new();
    for sub in subscribers
        .iter()
        .filter(|s| subscribes(&s.events, event.event_type))
    {
        count += 1;
        let id = id::new_at(id::DELIVERY, event.created_at);
        let leased = plan.takes(&sub.target.webhook_id);
        if leased {
            jobs.push(shared.job(id.clone(), 1, plan.until, sub.target.clone()));
        }
        deliveries.push(NewDelivery {
            id,
            event,
            target: sub.target.clone(),
            leased,
        });
    }
    Ingested::Created {
        event_id: event.id.clone(),
        deliveries: count,
        jobs,
    }
}

/// The same answer again, for a key repeated within one batch.
fn existing_from(first: &Ingested, first_type: &str) -> Ingested {
    match first {
        Ingested::Created {
            event_id,
            deliveries,
            ..
        } => Ingested::Existing {
            event_id: event_id.clone(),
            event_type: first_type.to_owned(),
            deliveries: *deliveries,
        },
        Ingested::Existing {
            event_id,
            event_type,
            deliveries,
        } => Ingested::Existing {
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            deliveries: *deliveries,
        },
    }
}

/// The parts of a job every delivery of one event shares, allocated once.
pub(crate) struct EventShare {
    event_id: Arc<str>,
    tenant_id: Arc<str>,
    event_type: Arc<str>,
    body: Arc<str>,
}

impl EventShare {
    pub fn new(event_id: &str, tenant_id: &str, event_type: &str, body: &str) -> Self {
        EventShare {
            event_id: Arc::from(event_id),
            tenant_id: Arc::from(tenant_id),
            event_type: Arc::from(event_type),
            body: Arc::from(body),
        }
    }

    pub fn job(
        &self,
        delivery_id: String,
        attempt: u32,
        leased_until: Timestamp,
        target: Arc<Target>,
    ) -> Job {
        Job {
            delivery_id,
            event_id: self.event_id.clone(),
            tenant_id: self.tenant_id.clone(),
            event_type: self.event_type.clone(),
            body: self.body.clone(),
            attempt,
            leased_until,
            target,
        }
    }
}

/// Counter increments for one webhook from one batch of attempts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CounterDelta {
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub last_triggered_at: i64,
}

#[async_trait]
pub(crate) trait RecordTx: Send {
    /// Applies each delivery's new state where `node` still holds its lease; returns the ids
    /// it applied to.
    async fn update_states(
        &mut self,
        records: &[AttemptRecord],
        node: &str,
    ) -> StoreResult<HashSet<String>>;
    async fn insert_logs(&mut self, rows: &[LogRow<'_>]) -> StoreResult<()>;
    async fn add_counters(&mut self, deltas: &[(&str, CounterDelta)]) -> StoreResult<()>;
}

/// Records one batch of attempts inside `tx` (the caller commits).
pub(crate) async fn record(
    tx: &mut impl RecordTx,
    records: &[AttemptRecord],
    node: &str,
) -> StoreResult<()> {
    let mut held = HashSet::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        held.extend(tx.update_states(chunk, node).await?);
    }
    // One log row per attempt, whether or not the lease was still held: it happened.
    let rows: Vec<LogRow<'_>> = records.iter().map(LogRow::of_attempt).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        tx.insert_logs(chunk).await?;
    }
    let deltas = counter_deltas(records, &held);
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        tx.add_counters(chunk).await?;
    }
    Ok(())
}

/// A delivery counts once, when it ends, and only if its lease was still held.
fn counter_deltas<'a>(
    records: &'a [AttemptRecord],
    held: &HashSet<String>,
) -> Vec<(&'a str, CounterDelta)> {
    let mut counters: HashMap<&str, CounterDelta> = HashMap::new();
    for r in records {
        let delta = counters.entry(&r.job.target.webhook_id).or_default();
        delta.last_triggered_at = delta.last_triggered_at.max(r.outcome.started_at.millis());
        let (state, _, _) = state_after(r);
        if state != DeliveryState::Pending && held.contains(&r.job.delivery_id) {
            delta.total += 1;
            if state == DeliveryState::Succeeded {
                delta.succeeded += 1;
            } else {
                delta.failed += 1;
            }
        }
    }
    counters.into_iter().collect()
}

/// The delivery's state, next attempt time and completion time after an attempt.
pub(crate) fn state_after(r: &AttemptRecord) -> (DeliveryState, Timestamp, Option<Timestamp>) {
    match r.next {
        Next::Succeeded => (DeliveryState::Succeeded, r.recorded_at, Some(r.recorded_at)),
        Next::Failed => (DeliveryState::Failed, r.recorded_at, Some(r.recorded_at)),
        Next::RetryAt(at) => (DeliveryState::Pending, at, None),
    }
}

/// A webhook_logs row to insert, borrowed from wherever it comes from.
pub(crate) struct LogRow<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub webhook_id: &'a str,
    pub delivery_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub event_type: &'a str,
    pub payload: Option<&'a str>,
    pub request_headers: Option<&'a str>,
    pub response_status: Option<i64>,
    pub response_body: Option<&'a str>,
    pub response_body_truncated: bool,
    pub response_time_ms: Option<i64>,
    pub error_message: Option<&'a str>,
    pub attempt_count: i64,
    pub is_success: bool,
    pub is_test: bool,
    pub created_at: Timestamp,
}

impl<'a> LogRow<'a> {
    /// The row for a delivery attempt; its payload is the event's body, joined on read.
    fn of_attempt(r: &'a AttemptRecord) -> Self {
        let o = &r.outcome;
        LogRow {
            id: &r.log_id,
            tenant_id: &r.job.tenant_id,
            webhook_id: &r.job.target.webhook_id,
            delivery_id: Some(&r.job.delivery_id),
            event_id: Some(&r.job.event_id),
            event_type: &r.job.event_type,
            payload: None,
            request_headers: Some(&o.request_headers),
            response_status: o.response_status.map(i64::from),
            response_body: o.response_body.as_deref(),
            response_body_truncated: o.response_body_truncated,
            response_time_ms: Some(o.response_time_ms),
            error_message: o.error.as_deref(),
            attempt_count: i64::from(r.job.attempt),
            is_success: o.is_success(),
            is_test: false,
            created_at: o.started_at,
        }
    }

    pub fn of(entry: &'a LogEntry) -> Self {
        LogRow {
            id: &entry.id,
            tenant_id: &entry.tenant_id,
            webhook_id: &entry.webhook_id,
            delivery_id: entry.delivery_id.as_deref(),
            event_id: entry.event_id.as_deref(),
            event_type: &entry.event_type,
            payload: Some(&entry.payload),
            request_headers: entry.request_headers.as_deref(),
            response_status: entry.response_status,
            response_body: entry.response_body.as_deref(),
            response_body_truncated: entry.response_body_truncated,
            response_time_ms: entry.response_time_ms,
            error_message: entry.error_message.as_deref(),
            attempt_count: entry.attempt_count,
            is_success: entry.is_success,
            is_test: entry.is_test,
            created_at: entry.created_at,
        }
    }
}
