//! The delivery queue on PostgreSQL: the SQL behind the shared batch algorithms (ingest and
//! recording, in [`crate::store::batch`]), claiming due work under a lease, and leases.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::{events_json_list, opt_ts, target_from, ts};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, Job, Target};
use crate::domain::event::NewEvent;
use crate::domain::time::Timestamp;
use crate::store::batch::{
    self, CounterDelta, EventShare, IngestTx, KeyHolder, LogRow, NewDelivery, RecordTx, Subscriber,
    state_after,
};
use crate::store::{Ingested, LeasePlan, NODE_DEAD_AFTER_MS, QueueDepth, StoreError, StoreResult};

crate::store::bulk::bulk_inserts!(Postgres);

/// One open write transaction.
struct Tx<'c, 'k>(Transaction<'c, Postgres>, &'k Keyring);

pub(super) async fn ingest(
    pool: &PgPool,
    events: &[NewEvent],
    plan: &LeasePlan,
    keys: &Keyring,
) -> StoreResult<Vec<Ingested>> {
    // Another node may commit the same idempotency key between our check and our insert; the
    // unique index refuses ours, and on the next try the check finds theirs.
    let mut tries = 0;
    loop {
        match ingest_once(pool, events, plan, keys).await {
            Err(StoreError::Conflict(_)) if tries < 3 => tries += 1,
            other => return other,
        }
    }
}

async fn ingest_once(
    pool: &PgPool,
    events: &[NewEvent],
    plan: &LeasePlan,
    keys: &Keyring,
) -> StoreResult<Vec<Ingested>> {
    let mut tx = Tx(pool.begin().await?, keys);
    let results = batch::ingest(&mut tx, events, plan).await?;
    let left_for_others = results.iter().any(|r| match r {
        Ingested::Created {
            deliveries, jobs, ..
        } => jobs.len() < *deliveries,
        Ingested::Existing { .. } => false,
    });
    if left_for_others {
        // Delivered with the commit: idle nodes wake and claim what this node could not take.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::WORK_CHANNEL)
            .execute(&mut *tx.0)
            .await?;
    }
    tx.0.commit().await?;
    Ok(results)
}

pub(super) async fn record_attempts(
    pool: &PgPool,
    records: &[AttemptRecord],
    node: &str,
    keys: &Keyring,
) -> StoreResult<()> {
    let mut tx = Tx(pool.begin().await?, keys);
    batch::record(&mut tx, records, node).await?;
    tx.0.commit().await?;
    Ok(())
}

pub(super) async fn insert_log(pool: &PgPool, row: &LogRow<'_>, keys: &Keyring) -> StoreResult<()> {
    let mut tx = Tx(pool.begin().await?, keys);
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
             FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
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
        sqlx::query("UPDATE events SET idempotency_key = NULL WHERE id = $1")
            .bind(event_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn subscribers(&mut self, tenant_id: &str) -> StoreResult<Vec<Subscriber>> {
        let rows = sqlx::query(
            "SELECT id, url, secret, previous_secret, previous_secret_expires_at, timeout_seconds,
                    retry_count, headers, rate_limit_per_second, events
             FROM webhooks WHERE tenant_id = $1 AND is_active",
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
        let mut update = sqlx::QueryBuilder::<Postgres>::new(
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
        // Restricting by primary key as well makes the plan an index lookup per record
        // whatever the statistics say: on a table never analysed (a fresh database after a
        // burst) the planner otherwise compared every pending delivery with every record.
        let ids: Vec<&str> = records.iter().map(|r| r.job.delivery_id.as_str()).collect();
        update.push(" AND deliveries.id = ANY(");
        update.push_bind(ids);
        update.push(") RETURNING deliveries.id");
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
            sqlx::QueryBuilder::<Postgres>::new("WITH c(id, total, ok, failed, last) AS (");
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
                 last_triggered_at = GREATEST(COALESCE(last_triggered_at, 0), c.last)
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
    pool: &PgPool,
    plan: &LeasePlan,
    now: Timestamp,
    limit: u32,
    keys: &Keyring,
) -> StoreResult<Vec<Job>> {
    if !plan.lease || limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    // SKIP LOCKED: nodes claiming at the same moment take disjoint rows instead of waiting
    // for each other.
    let rows = sqlx::query(
        "SELECT d.id, d.event_id, d.tenant_id, d.webhook_id, d.attempts, e.event_type, e.body,
                w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                w.timeout_seconds, w.retry_count, w.headers, w.rate_limit_per_second
         FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         JOIN events e ON e.id = d.event_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1
           AND (d.leased_until IS NULL OR d.leased_until < $1
                OR d.leased_by NOT IN (SELECT id FROM nodes WHERE heartbeat_at > $4))
           AND w.is_active
           AND NOT (d.webhook_id = ANY($2))
         ORDER BY d.next_attempt_at
         LIMIT $3
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(now.millis())
    .bind(&plan.skip_webhooks)
    .bind(i64::from(limit))
    .bind(now.millis() - NODE_DEAD_AFTER_MS)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = jobs_from(&rows, plan, keys)?;
    let ids: Vec<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
    sqlx::query("UPDATE deliveries SET leased_until = $1, leased_by = $2 WHERE id = ANY($3)")
        .bind(plan.until.millis())
        .bind(&plan.node)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(jobs)
}

/// Jobs from claimed rows, sharing each event's body and each webhook's settings.
fn jobs_from(
    rows: &[sqlx::postgres::PgRow],
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

pub(super) async fn next_due(pool: &PgPool) -> StoreResult<Option<Timestamp>> {
    let row = sqlx::query(
        "SELECT MIN(GREATEST(d.next_attempt_at, CASE
                    WHEN d.leased_by IN (SELECT id FROM nodes WHERE heartbeat_at > $1)
                    THEN d.leased_until ELSE 0 END)) AS due
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND w.is_active",
    )
    .bind(Timestamp::now().millis() - NODE_DEAD_AFTER_MS)
    .fetch_one(pool)
    .await?;
    opt_ts(&row, "due").map_err(StoreError::from)
}

pub(super) async fn renew_lease(
    pool: &PgPool,
    delivery_id: &str,
    node: &str,
    until: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET leased_until = $1
         WHERE id = $2 AND leased_by = $3 AND state = 'pending'",
    )
    .bind(until.millis())
    .bind(delivery_id)
    .bind(node)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release_leases(
    pool: &PgPool,
    delivery_ids: &[String],
    node: &str,
) -> StoreResult<()> {
    for chunk in delivery_ids.chunks(batch::ROWS_PER_STATEMENT) {
        sqlx::query(
            "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
             WHERE id = ANY($1) AND leased_by = $2",
        )
        .bind(chunk)
        .bind(node)
        .execute(pool)
        .await?;
    }
    // Work handed back is for any node: wake the idle ones.
    notify_work(pool).await
}

/// Wakes nodes listening for work left for anyone to claim.
pub(super) async fn notify_work(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(super::WORK_CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn queue_depth(pool: &PgPool, now: Timestamp) -> StoreResult<QueueDepth> {
    // The partial index on pending deliveries bounds the scan to the queue itself.
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE free AND next_attempt_at <= $1) AS due,
                COUNT(*) FILTER (WHERE free AND next_attempt_at > $1) AS scheduled,
                COUNT(*) FILTER (WHERE NOT free) AS leased
         FROM (SELECT next_attempt_at, COALESCE(leased_until, 0) < $1 AS free
               FROM deliveries WHERE state = 'pending') AS pending",
    )
    .bind(now.millis())
    .fetch_one(pool)
    .await?;
    Ok(QueueDepth {
        due: row.try_get("due")?,
        scheduled: row.try_get("scheduled")?,
        leased: row.try_get("leased")?,
    })
}
