//! The delivery queue on SQLite: ingest (event + fan-out in one transaction), claiming due
//! work under a lease, and recording attempts in batches.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{events_json_list, opt_ts, ts};
use crate::domain::delivery::{AttemptRecord, DeliveryState, Job, Next, Target};
use crate::domain::event::{IDEMPOTENCY_WINDOW_MS, NewEvent};
use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::domain::webhook::subscribes;
use crate::store::{Ingested, LeasePlan, LogEntry, StoreError, StoreResult};

/// An active webhook as fan-out sees it.
struct Subscriber {
    target: Arc<Target>,
    events: Vec<String>,
}

fn target_from(row: &sqlx::sqlite::SqliteRow, id_column: &str) -> StoreResult<Target> {
    let timeout: i64 = row.try_get("timeout_seconds")?;
    let retry_count: i64 = row.try_get("retry_count")?;
    Ok(Target {
        webhook_id: row.try_get(id_column)?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        timeout: Duration::from_secs(timeout.clamp(1, 3600) as u64),
        retry_count: retry_count.clamp(0, 100) as u32,
    })
}

async fn subscribers(
    tx: &mut Transaction<'_, Sqlite>,
    tenant_id: &str,
) -> StoreResult<Vec<Subscriber>> {
    let rows = sqlx::query(
        "SELECT id, url, secret, timeout_seconds, retry_count, events
         FROM webhooks WHERE tenant_id = ? AND is_active = 1",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Subscriber {
                target: Arc::new(target_from(row, "id")?),
                events: events_json_list(row.try_get("events")?)?,
            })
        })
        .collect()
}

/// Rows per multi-row statement, kept well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// A delivery row to insert.
struct NewDelivery<'a> {
    id: String,
    event: &'a NewEvent,
    target: Arc<Target>,
    leased: bool,
}

pub(super) async fn ingest(
    writer: &SqlitePool,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    // Every statement is a round trip to SQLite's connection thread, so rows are written with
    // a few multi-row statements per batch rather than one statement per row.
    let mut tx = writer.begin().await?;
    let mut by_tenant: HashMap<&str, Vec<Subscriber>> = HashMap::new();
    let mut results = Vec::with_capacity(events.len());
    let mut fresh: Vec<&NewEvent> = Vec::with_capacity(events.len());
    let mut deliveries: Vec<NewDelivery<'_>> = Vec::new();
    // Keys taken earlier in this same batch: (tenant, key) → index in `results`.
    let mut batch_keys: HashMap<(&str, &str), usize> = HashMap::new();
    for event in events {
        if let Some(key) = &event.idempotency_key {
            if let Some(&first) = batch_keys.get(&(event.tenant_id.as_str(), key.as_str())) {
                // `results` holds one answer per event so far, in order.
                results.push(existing_from(&results[first], events[first].event_type));
                continue;
            }
            if let Some(existing) = earlier_event(&mut tx, event, key).await? {
                results.push(existing);
                continue;
            }
            batch_keys.insert((&event.tenant_id, key), results.len());
        }
        if !by_tenant.contains_key(event.tenant_id.as_str()) {
            let found = subscribers(&mut tx, &event.tenant_id).await?;
            by_tenant.insert(&event.tenant_id, found);
        }
        let subscribers = by_tenant
            .get(event.tenant_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let shared = Shared::new(event);
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
        fresh.push(event);
        results.push(Ingested::Created {
            event_id: event.id.clone(),
            deliveries: count,
            jobs,
        });
    }
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, tenant_id, event_type, body, idempotency_key, created_at) ",
        );
        insert.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.as_str())
                .push_bind(e.tenant_id.as_str())
                .push_bind(e.event_type)
                .push_bind(e.body.as_str())
                .push_bind(e.idempotency_key.as_deref())
                .push_bind(e.created_at.millis());
        });
        insert.build().persistent(false).execute(&mut *tx).await?;
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, state, attempts,
                next_attempt_at, leased_until, leased_by, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, d| {
            let at = d.event.created_at.millis();
            row.push_bind(d.id.as_str())
                .push_bind(d.event.tenant_id.as_str())
                .push_bind(d.event.id.as_str())
                .push_bind(d.target.webhook_id.as_str())
                .push_bind("pending")
                .push_bind(0_i64)
                .push_bind(at)
                .push_bind(d.leased.then_some(plan.until.millis()))
                .push_bind(d.leased.then_some(plan.node.as_str()))
                .push_bind(at)
                .push_bind(at);
        });
        insert.build().persistent(false).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(results)
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

/// The event that already holds this idempotency key within the window, if any. A key past
/// the window is freed (the old event keeps its data) so the new event can take it.
async fn earlier_event(
    tx: &mut Transaction<'_, Sqlite>,
    event: &NewEvent,
    key: &str,
) -> StoreResult<Option<Ingested>> {
    let existing = sqlx::query(
        "SELECT id, event_type, created_at,
                (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = events.id) AS n
         FROM events WHERE tenant_id = ? AND idempotency_key = ?",
    )
    .bind(&event.tenant_id)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = existing else {
        return Ok(None);
    };
    let first_at = ts(&row, "created_at")?;
    if first_at.millis() > event.created_at.millis() - IDEMPOTENCY_WINDOW_MS {
        let n: i64 = row.try_get("n")?;
        return Ok(Some(Ingested::Existing {
            event_id: row.try_get("id")?,
            event_type: row.try_get("event_type")?,
            deliveries: n as usize,
        }));
    }
    sqlx::query("UPDATE events SET idempotency_key = NULL WHERE id = ?")
        .bind(row.try_get::<String, _>("id")?)
        .execute(&mut **tx)
        .await?;
    Ok(None)
}

/// The parts of a job every delivery of one event shares.
struct Shared {
    event_id: Arc<str>,
    tenant_id: Arc<str>,
    event_type: Arc<str>,
    body: Arc<str>,
}

impl Shared {
    fn new(event: &NewEvent) -> Self {
        Shared {
            event_id: Arc::from(event.id.as_str()),
            tenant_id: Arc::from(event.tenant_id.as_str()),
            event_type: Arc::from(event.event_type),
            body: Arc::from(event.body.as_str()),
        }
    }

    fn job(
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

pub(super) async fn claim_due(
    writer: &SqlitePool,
    plan: &LeasePlan,
    now: Timestamp,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    if !plan.lease || limit == 0 {
        return Ok(Vec::new());
    }
    let skip = serde_json::to_string(&plan.skip_webhooks).unwrap_or_else(|_| "[]".into());
    let mut tx = writer.begin().await?;
    let rows = sqlx::query(
        "SELECT d.id, d.event_id, d.tenant_id, d.webhook_id, d.attempts, e.event_type, e.body,
                w.url, w.secret, w.timeout_seconds, w.retry_count
         FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         JOIN events e ON e.id = d.event_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
           AND (d.leased_until IS NULL OR d.leased_until < ?1)
           AND w.is_active = 1
           AND d.webhook_id NOT IN (SELECT value FROM json_each(?2))
         ORDER BY d.next_attempt_at
         LIMIT ?3",
    )
    .bind(now.millis())
    .bind(&skip)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut events: HashMap<String, Shared> = HashMap::new();
    let mut targets: HashMap<String, Arc<Target>> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        let delivery_id: String = row.try_get("id")?;
        let event_id: String = row.try_get("event_id")?;
        let webhook_id: String = row.try_get("webhook_id")?;
        let attempts: i64 = row.try_get("attempts")?;
        if !events.contains_key(&event_id) {
            let body: String = row.try_get("body")?;
            let tenant_id: String = row.try_get("tenant_id")?;
            let event_type: String = row.try_get("event_type")?;
            let shared = Shared {
                event_id: Arc::from(event_id.as_str()),
                tenant_id: Arc::from(tenant_id.as_str()),
                event_type: Arc::from(event_type.as_str()),
                body: Arc::from(body.as_str()),
            };
            events.insert(event_id.clone(), shared);
        }
        let target = match targets.get(&webhook_id) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(target_from(row, "webhook_id")?);
                targets.insert(webhook_id.clone(), t.clone());
                t
            }
        };
        let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
        if let Some(shared) = events.get(&event_id) {
            jobs.push(shared.job(delivery_id.clone(), attempt, plan.until, target));
        }
        ids.push(delivery_id);
    }
    let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "UPDATE deliveries SET leased_until = ?, leased_by = ?
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(plan.until.millis())
    .bind(&plan.node)
    .bind(&ids_json)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(jobs)
}

pub(super) async fn next_due(reader: &SqlitePool) -> StoreResult<Option<Timestamp>> {
    let row = sqlx::query(
        "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.leased_until, 0))) AS due
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND w.is_active = 1",
    )
    .fetch_one(reader)
    .await?;
    opt_ts(&row, "due").map_err(StoreError::from)
}

pub(super) async fn renew_lease(
    writer: &SqlitePool,
    delivery_id: &str,
    node: &str,
    until: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET leased_until = ?
         WHERE id = ? AND leased_by = ? AND state = 'pending'",
    )
    .bind(until.millis())
    .bind(delivery_id)
    .bind(node)
    .execute(writer)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release_leases(
    writer: &SqlitePool,
    delivery_ids: &[String],
    node: &str,
) -> StoreResult<()> {
    for chunk in delivery_ids.chunks(500) {
        let ids = serde_json::to_string(chunk).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
             WHERE id IN (SELECT value FROM json_each(?)) AND leased_by = ?",
        )
        .bind(&ids)
        .bind(node)
        .execute(writer)
        .await?;
    }
    Ok(())
}

pub(super) async fn release_all_leases(writer: &SqlitePool) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
         WHERE state = 'pending' AND leased_by IS NOT NULL",
    )
    .execute(writer)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Default)]
struct CounterDelta {
    total: i64,
    succeeded: i64,
    failed: i64,
    last_triggered_at: i64,
}

pub(super) async fn record_attempts(
    writer: &SqlitePool,
    records: &[AttemptRecord],
    node: &str,
) -> StoreResult<()> {
    let mut tx = writer.begin().await?;
    // 1. Delivery states, only where this node still holds the lease; RETURNING names those.
    let mut held: HashSet<String> = HashSet::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut update = sqlx::QueryBuilder::<Sqlite>::new(
            "WITH u(id, state, attempts, next_at, status, error, at, done_at) AS (",
        );
        update.push_values(chunk, |mut row, r| {
            let (state, next_at, done_at) = state_after(r);
            row.push_bind(r.job.delivery_id.as_str())
                .push_bind(state.as_str())
                .push_bind(i64::from(r.job.attempt))
                .push_bind(next_at.millis())
                .push_bind(r.outcome.response_status.map(i64::from))
                .push_bind(r.outcome.error.as_deref())
                .push_bind(r.recorded_at.millis())
                .push_bind(done_at.map(Timestamp::millis));
        });
        update.push(
            ") UPDATE deliveries SET state = u.state, attempts = u.attempts,
                 next_attempt_at = u.next_at, leased_until = NULL, leased_by = NULL,
                 last_status = u.status, last_error = u.error, updated_at = u.at,
                 completed_at = u.done_at
             FROM u WHERE deliveries.id = u.id AND deliveries.state = 'pending'
               AND deliveries.leased_by = ",
        );
        update.push_bind(node);
        update.push(" RETURNING deliveries.id");
        for row in update.build().persistent(false).fetch_all(&mut *tx).await? {
            held.insert(row.try_get(0)?);
        }
    }
    // 2. One log row per attempt, whether or not the lease was still held: it happened.
    let rows: Vec<LogRow<'_>> = records.iter().map(LogRow::of_attempt).collect();
    insert_logs(&mut tx, &rows).await?;
    // 3. Counters: a delivery counts once, when it ends, and only under its lease.
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
    let counters: Vec<(&str, CounterDelta)> = counters.into_iter().collect();
    for chunk in counters.chunks(ROWS_PER_STATEMENT) {
        let mut update =
            sqlx::QueryBuilder::<Sqlite>::new("WITH c(id, total, ok, failed, last) AS (");
        update.push_values(chunk, |mut row, (id, d)| {
            row.push_bind(*id)
                .push_bind(d.total)
                .push_bind(d.succeeded)
                .push_bind(d.failed)
                .push_bind(d.last_triggered_at);
        });
        update.push(
            ") UPDATE webhooks SET total_deliveries = total_deliveries + c.total,
                 successful_deliveries = successful_deliveries + c.ok,
                 failed_deliveries = failed_deliveries + c.failed,
                 last_triggered_at = MAX(COALESCE(last_triggered_at, 0), c.last)
             FROM c WHERE webhooks.id = c.id",
        );
        update.build().persistent(false).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The delivery's state, next attempt time and completion time after an attempt.
fn state_after(r: &AttemptRecord) -> (DeliveryState, Timestamp, Option<Timestamp>) {
    match r.next {
        Next::Succeeded => (DeliveryState::Succeeded, r.recorded_at, Some(r.recorded_at)),
        Next::Failed => (DeliveryState::Failed, r.recorded_at, Some(r.recorded_at)),
        Next::RetryAt(at) => (DeliveryState::Pending, at, None),
    }
}

async fn insert_logs(tx: &mut Transaction<'_, Sqlite>, rows: &[LogRow<'_>]) -> StoreResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO webhook_logs (id, tenant_id, webhook_id, delivery_id, event_id,
                event_type, payload, request_headers, response_status, response_body,
                response_body_truncated, response_time_ms, error_message, attempt_count,
                is_success, is_test, created_at) ",
        );
        insert.push_values(chunk, |mut b, row| {
            b.push_bind(row.id)
                .push_bind(row.tenant_id)
                .push_bind(row.webhook_id)
                .push_bind(row.delivery_id)
                .push_bind(row.event_id)
                .push_bind(row.event_type)
                .push_bind(row.payload)
                .push_bind(row.request_headers)
                .push_bind(row.response_status)
                .push_bind(row.response_body)
                .push_bind(row.response_body_truncated)
                .push_bind(row.response_time_ms)
                .push_bind(row.error_message)
                .push_bind(row.attempt_count)
                .push_bind(row.is_success)
                .push_bind(row.is_test)
                .push_bind(row.created_at.millis());
        });
        insert.build().persistent(false).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A webhook_logs row to insert, borrowed from wherever it comes from.
pub(super) struct LogRow<'a> {
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

pub(super) async fn insert_log(writer: &SqlitePool, row: &LogRow<'_>) -> StoreResult<()> {
    let mut tx = writer.begin().await?;
    insert_logs(&mut tx, std::slice::from_ref(row)).await?;
    tx.commit().await?;
    Ok(())
}
