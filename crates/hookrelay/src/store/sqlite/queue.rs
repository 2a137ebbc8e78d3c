//! The delivery queue on SQLite: ingest (event + fan-out in one transaction), claiming due
//! work under a lease, and recording attempts in batches.

use std::collections::HashMap;
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

pub(super) async fn ingest(
    writer: &SqlitePool,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    let mut tx = writer.begin().await?;
    let mut by_tenant: HashMap<&str, Vec<Subscriber>> = HashMap::new();
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        if let Some(key) = &event.idempotency_key {
            let existing = sqlx::query(
                "SELECT id, event_type, created_at,
                        (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = events.id) AS n
                 FROM events WHERE tenant_id = ? AND idempotency_key = ?",
            )
            .bind(&event.tenant_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                let first_at = ts(&row, "created_at")?;
                if first_at.millis() > event.created_at.millis() - IDEMPOTENCY_WINDOW_MS {
                    let n: i64 = row.try_get("n")?;
                    results.push(Ingested::Existing {
                        event_id: row.try_get("id")?,
                        event_type: row.try_get("event_type")?,
                        deliveries: n as usize,
                    });
                    continue;
                }
                // Past the window: the key is free again; the old event keeps its data.
                sqlx::query("UPDATE events SET idempotency_key = NULL WHERE id = ?")
                    .bind(row.try_get::<String, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO events (id, tenant_id, event_type, body, idempotency_key, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&event.id)
        .bind(&event.tenant_id)
        .bind(event.event_type)
        .bind(&event.body)
        .bind(&event.idempotency_key)
        .bind(event.created_at.millis())
        .execute(&mut *tx)
        .await?;

        if !by_tenant.contains_key(event.tenant_id.as_str()) {
            let found = subscribers(&mut tx, &event.tenant_id).await?;
            by_tenant.insert(&event.tenant_id, found);
        }
        let subscribers = by_tenant
            .get(event.tenant_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let now = event.created_at;
        let mut deliveries = 0;
        let mut jobs = Vec::new();
        let shared = Shared::new(event);
        for sub in subscribers
            .iter()
            .filter(|s| subscribes(&s.events, event.event_type))
        {
            deliveries += 1;
            let delivery_id = id::new_at(id::DELIVERY, now);
            let leased = plan.takes(&sub.target.webhook_id);
            sqlx::query(
                "INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, state, attempts,
                    next_attempt_at, leased_until, leased_by, created_at, updated_at)
                 VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)",
            )
            .bind(&delivery_id)
            .bind(&event.tenant_id)
            .bind(&event.id)
            .bind(&sub.target.webhook_id)
            .bind(now.millis())
            .bind(leased.then_some(plan.until.millis()))
            .bind(leased.then_some(plan.node.as_str()))
            .bind(now.millis())
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
            if leased {
                jobs.push(shared.job(delivery_id, 1, plan.until, sub.target.clone()));
            }
        }
        results.push(Ingested::Created {
            event_id: event.id.clone(),
            deliveries,
            jobs,
        });
    }
    tx.commit().await?;
    Ok(results)
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
    let mut counters: HashMap<&str, CounterDelta> = HashMap::new();
    for r in records {
        let (state, next_at, completed_at) = match r.next {
            Next::Succeeded => (DeliveryState::Succeeded, r.recorded_at, Some(r.recorded_at)),
            Next::Failed => (DeliveryState::Failed, r.recorded_at, Some(r.recorded_at)),
            Next::RetryAt(at) => (DeliveryState::Pending, at, None),
        };
        let o = &r.outcome;
        let updated = sqlx::query(
            "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?,
                leased_until = NULL, leased_by = NULL, last_status = ?, last_error = ?,
                updated_at = ?, completed_at = ?
             WHERE id = ? AND state = 'pending' AND leased_by = ?",
        )
        .bind(state.as_str())
        .bind(i64::from(r.job.attempt))
        .bind(next_at.millis())
        .bind(o.response_status.map(i64::from))
        .bind(&o.error)
        .bind(r.recorded_at.millis())
        .bind(completed_at.map(Timestamp::millis))
        .bind(&r.job.delivery_id)
        .bind(node)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        insert_log(
            &mut *tx,
            &LogRow {
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
            },
        )
        .await?;
        let delta = counters.entry(&r.job.target.webhook_id).or_default();
        delta.last_triggered_at = delta.last_triggered_at.max(o.started_at.millis());
        // Counted once, when it ends, and only by the holder of its lease.
        if updated && state != DeliveryState::Pending {
            delta.total += 1;
            if state == DeliveryState::Succeeded {
                delta.succeeded += 1;
            } else {
                delta.failed += 1;
            }
        }
    }
    for (webhook_id, d) in counters {
        sqlx::query(
            "UPDATE webhooks SET total_deliveries = total_deliveries + ?,
                successful_deliveries = successful_deliveries + ?,
                failed_deliveries = failed_deliveries + ?,
                last_triggered_at = MAX(COALESCE(last_triggered_at, 0), ?)
             WHERE id = ?",
        )
        .bind(d.total)
        .bind(d.succeeded)
        .bind(d.failed)
        .bind(d.last_triggered_at)
        .bind(webhook_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
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

pub(super) async fn insert_log<'c, E>(executor: E, row: &LogRow<'_>) -> StoreResult<()>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO webhook_logs (id, tenant_id, webhook_id, delivery_id, event_id, event_type,
            payload, request_headers, response_status, response_body, response_body_truncated,
            response_time_ms, error_message, attempt_count, is_success, is_test, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(row.id)
    .bind(row.tenant_id)
    .bind(row.webhook_id)
    .bind(row.delivery_id)
    .bind(row.event_id)
    .bind(row.event_type)
    .bind(row.payload)
    .bind(row.request_headers)
    .bind(row.response_status)
    .bind(row.response_body)
    .bind(row.response_body_truncated)
    .bind(row.response_time_ms)
    .bind(row.error_message)
    .bind(row.attempt_count)
    .bind(row.is_success)
    .bind(row.is_test)
    .bind(row.created_at.millis())
    .execute(executor)
    .await?;
    Ok(())
}
