//! The delivery queue on SQLite: the SQL behind the shared batch algorithms (ingest and
//! recording, in [`crate::store::batch`]), claiming due work under a lease, and leases.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{events_json_list, opt_ts, target_from, ts};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, Job, Target};
use crate::domain::event::NewEvent;
use crate::domain::time::Timestamp;
use crate::store::batch::{
    self, CounterDelta, EventShare, IngestTx, KeyHolder, LogRow, NewDelivery, RecordTx, Subscriber,
    state_after,
};
use crate::store::{Ingested, LeasePlan, QueueDepth, StoreError, StoreResult};

crate::store::bulk::bulk_inserts!(Sqlite);

/// One open write transaction.
struct Tx<'c, 'k>(Transaction<'c, Sqlite>, &'k Keyring);

pub(super) async fn ingest(
    writer: &SqlitePool,
    events: &[NewEvent],
    plan: &LeasePlan,
    keys: &Keyring,
) -> StoreResult<Vec<Ingested>> {
    let mut tx = Tx(writer.begin().await?, keys);
    let results = batch::ingest(&mut tx, events, plan).await?;
    tx.0.commit().await?;
    Ok(results)
}

pub(super) async fn record_attempts(
    writer: &SqlitePool,
    records: &[AttemptRecord],
    node: &str,
    keys: &Keyring,
) -> StoreResult<()> {
    let mut tx = Tx(writer.begin().await?, keys);
    batch::record(&mut tx, records, node).await?;
    tx.0.commit().await?;
    Ok(())
}

pub(super) async fn insert_log(
    writer: &SqlitePool,
    row: &LogRow<'_>,
    keys: &Keyring,
) -> StoreResult<()> {
    let mut tx = Tx(writer.begin().await?, keys);
    tx.insert_logs(std::slice::from_ref(row)).await?;
    tx.0.commit().await?;
    Ok(())
}

#[async_trait]
impl IngestTx for Tx<'_, '_> {
    async fn key_holder(&mut self, tenant_id: &str, key: &str) -> StoreResult<Option<KeyHolder>> {
        let row = sqlx::query(
            "SELECT id, event_type, created_at,
                    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = events.id) AS n
             FROM events WHERE tenant_id = ? AND idempotency_key = ?",
        )
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&mut *self.0)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeyHolder {
            event_id: row.try_get("id")?,
            event_type: row.try_get("event_type")?,
            created_at: ts(&row, "created_at")?,
            deliveries: row.try_get::<i64, _>("n")? as usize,
        }))
    }

    async fn free_key(&mut self, event_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE events SET idempotency_key = NULL WHERE id = ?")
            .bind(event_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn subscribers(&mut self, tenant_id: &str) -> StoreResult<Vec<Subscriber>> {
        let rows = sqlx::query(
            "SELECT id, url, secret, previous_secret, previous_secret_expires_at, timeout_seconds,
                    retry_count, headers, rate_limit_per_second, events
             FROM webhooks WHERE tenant_id = ? AND is_active = 1",
        )
        .bind(tenant_id)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Subscriber {
                    target: Arc::new(target_from(row, "id", self.1)?),
                    events: events_json_list(row.try_get("events")?)?,
                })
            })
            .collect()
    }

    async fn insert_events(&mut self, events: &[&NewEvent]) -> StoreResult<()> {
        insert_events(&mut self.0, events).await
    }

    async fn insert_deliveries(
        &mut self,
        rows: &[NewDelivery<'_>],
        plan: &LeasePlan,
    ) -> StoreResult<()> {
        insert_deliveries(&mut self.0, rows, plan).await
    }
}

#[async_trait]
impl RecordTx for Tx<'_, '_> {
    async fn update_states(
        &mut self,
        records: &[AttemptRecord],
        node: &str,
    ) -> StoreResult<HashSet<String>> {
        let mut update = sqlx::QueryBuilder::<Sqlite>::new(
            "WITH u(id, state, attempts, next_at, status, error, at, done_at) AS (",
        );
        update.push_values(records, |mut row, r| {
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
        let rows = update
            .build()
            .persistent(false)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(StoreError::from))
            .collect()
    }

    async fn insert_logs(&mut self, rows: &[LogRow<'_>]) -> StoreResult<()> {
        insert_logs(&mut self.0, rows).await
    }

    async fn add_counters(&mut self, deltas: &[(&str, CounterDelta)]) -> StoreResult<()> {
        let mut update =
            sqlx::QueryBuilder::<Sqlite>::new("WITH c(id, total, ok, failed, last) AS (");
        update.push_values(deltas, |mut row, (id, d)| {
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
        update
            .build()
            .persistent(false)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

pub(super) async fn claim_due(
    writer: &SqlitePool,
    plan: &LeasePlan,
    now: Timestamp,
    limit: u32,
    keys: &Keyring,
) -> StoreResult<Vec<Job>> {
    if !plan.lease || limit == 0 {
        return Ok(Vec::new());
    }
    let skip = serde_json::to_string(&plan.skip_webhooks).unwrap_or_else(|_| "[]".into());
    let mut tx = writer.begin().await?;
    let rows = sqlx::query(
        "SELECT d.id, d.event_id, d.tenant_id, d.webhook_id, d.attempts, e.event_type, e.body,
                w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                w.timeout_seconds, w.retry_count, w.headers, w.rate_limit_per_second
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
    let jobs = jobs_from(&rows, plan, keys)?;
    let ids: Vec<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
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

/// Jobs from claimed rows, sharing each event's body and each webhook's settings.
fn jobs_from(
    rows: &[sqlx::sqlite::SqliteRow],
    plan: &LeasePlan,
    keys: &Keyring,
) -> StoreResult<Vec<Job>> {
    let mut events: HashMap<String, EventShare> = HashMap::new();
    let mut targets: HashMap<String, Arc<Target>> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let event_id: String = row.try_get("event_id")?;
        let webhook_id: String = row.try_get("webhook_id")?;
        let attempts: i64 = row.try_get("attempts")?;
        if !events.contains_key(&event_id) {
            let tenant_id: String = row.try_get("tenant_id")?;
            let event_type: String = row.try_get("event_type")?;
            let body: String = row.try_get("body")?;
            let share = EventShare::new(&event_id, &tenant_id, &event_type, &body);
            events.insert(event_id.clone(), share);
        }
        if !targets.contains_key(&webhook_id) {
            targets.insert(
                webhook_id.clone(),
                Arc::new(target_from(row, "webhook_id", keys)?),
            );
        }
        if let (Some(share), Some(target)) = (events.get(&event_id), targets.get(&webhook_id)) {
            let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
            jobs.push(share.job(row.try_get("id")?, attempt, plan.until, target.clone()));
        }
    }
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
    for chunk in delivery_ids.chunks(batch::ROWS_PER_STATEMENT) {
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

pub(super) async fn queue_depth(reader: &SqlitePool, now: Timestamp) -> StoreResult<QueueDepth> {
    // The partial index on pending deliveries bounds the scan to the queue itself.
    let row = sqlx::query(
        "SELECT COALESCE(SUM(free AND next_attempt_at <= ?1), 0) AS due,
                COALESCE(SUM(free AND next_attempt_at > ?1), 0) AS scheduled,
                COALESCE(SUM(NOT free), 0) AS leased
         FROM (SELECT next_attempt_at, COALESCE(leased_until, 0) < ?1 AS free
               FROM deliveries WHERE state = 'pending')",
    )
    .bind(now.millis())
    .fetch_one(reader)
    .await?;
    Ok(QueueDepth {
        due: row.try_get("due")?,
        scheduled: row.try_get("scheduled")?,
        leased: row.try_get("leased")?,
    })
}
