//! The delivery queue, written once for every backend: claiming due work under a lease,
//! renewing and giving back leases, and how deep the queue is.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Pool;

use super::backend::{Backend, Bind, get, get_id, query, sql};
use super::ingest::{EventShare, ROWS_PER_STATEMENT};
use super::rows::{SealedTarget, opt_ts};
use super::{LeasePlan, NODE_DEAD_AFTER_MS, QueueDepth, StoreResult};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{Job, Target};
use crate::domain::id::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

pub(crate) async fn claim_due<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    plan: &LeasePlan,
    now: Timestamp,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    if !plan.lease || limit == 0 {
        return Ok(Vec::new());
    }
    let mut tx = writer.begin().await?;
    // PostgreSQL: SKIP LOCKED, so nodes claiming at the same moment take disjoint rows
    // instead of waiting for each other; a lease held by a node gone silent is free.
    let q = query(sql::<B>(
        "SELECT d.id, d.event_id, d.tenant_id, d.webhook_id, d.attempts, d.counted, e.event_type, e.body,
                w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                w.timeout_seconds, w.retry_count, w.retry_schedule, w.headers, w.rate_limit_per_second
         FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         JOIN events e ON e.id = d.event_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1
           AND (d.leased_until IS NULL OR d.leased_until < $1)
           AND w.is_active = 1
           AND d.webhook_id NOT IN (SELECT value FROM json_each($2))
         ORDER BY d.next_attempt_at
         LIMIT $3",
        "SELECT d.id, d.event_id, d.tenant_id, d.webhook_id, d.attempts, d.counted, e.event_type, e.body,
                w.url, w.secret, w.previous_secret, w.previous_secret_expires_at,
                w.timeout_seconds, w.retry_count, w.retry_schedule, w.headers, w.rate_limit_per_second
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
    ));
    let skip: Vec<&str> = plan.skip_webhooks.iter().map(WebhookId::as_str).collect();
    let mut q = q.b(now.millis()).ids(&skip).b(i64::from(limit));
    if B::SHARED {
        q = q.b(now.millis() - NODE_DEAD_AFTER_MS);
    }
    let rows = B::fetch_all_on(&mut *tx, q).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = jobs_from::<B>(&rows, plan, keys)?;
    let ids: Vec<&str> = jobs.iter().map(|j| j.delivery_id.as_str()).collect();
    let lease = query(sql::<B>(
        "UPDATE deliveries SET leased_until = $1, leased_by = $2
         WHERE id IN (SELECT value FROM json_each($3))",
        "UPDATE deliveries SET leased_until = $1, leased_by = $2 WHERE id = ANY($3)",
    ));
    let lease = lease.b(plan.until.millis()).s(&plan.node).ids(&ids);
    B::execute_on(&mut *tx, lease).await?;
    tx.commit().await?;
    Ok(jobs)
}

/// Jobs from claimed rows, sharing each event's body and each webhook's settings (whose
/// secrets are opened once per webhook).
fn jobs_from<B: Backend>(
    rows: &[B::Row],
    plan: &LeasePlan,
    keys: &Keyring,
) -> StoreResult<Vec<Job>> {
    let mut events: HashMap<EventId, EventShare> = HashMap::new();
    let mut targets: HashMap<WebhookId, Arc<Target>> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let event_id: EventId = get_id::<B, _>(row, "event_id")?;
        let webhook_id: WebhookId = get_id::<B, _>(row, "webhook_id")?;
        let attempts: i64 = get::<B, _>(row, "attempts")?;
        if !events.contains_key(&event_id) {
            let tenant_id: TenantId = get_id::<B, _>(row, "tenant_id")?;
            let event_type: String = get::<B, _>(row, "event_type")?;
            let body: String = get::<B, _>(row, "body")?;
            let share = EventShare::new(event_id.clone(), tenant_id, &event_type, &body);
            events.insert(event_id.clone(), share);
        }
        if !targets.contains_key(&webhook_id) {
            let target = SealedTarget::read::<B>(row, "webhook_id")?.open(keys)?;
            targets.insert(webhook_id.clone(), target);
        }
        if let (Some(share), Some(target)) = (events.get(&event_id), targets.get(&webhook_id)) {
            let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
            let id = get_id::<B, DeliveryId>(row, "id")?;
            let mut job = share.job(id, attempt, plan.until, target.clone());
            job.counted = get::<B, bool>(row, "counted")?;
            jobs.push(job);
        }
    }
    Ok(jobs)
}

pub(crate) async fn next_due<B: Backend>(reader: &Pool<B>) -> StoreResult<Option<Timestamp>> {
    let q = query(sql::<B>(
        "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.leased_until, 0))) AS due
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND w.is_active = 1",
        "SELECT MIN(GREATEST(d.next_attempt_at, CASE
                    WHEN d.leased_by IN (SELECT id FROM nodes WHERE heartbeat_at > $1)
                    THEN d.leased_until ELSE 0 END)) AS due
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.state = 'pending' AND w.is_active",
    ));
    let q = if B::SHARED {
        q.b(Timestamp::now().millis() - NODE_DEAD_AFTER_MS)
    } else {
        q
    };
    let row = B::fetch_one(reader, q).await?;
    Ok(opt_ts::<B>(&row, "due")?)
}

pub(crate) async fn renew_lease<B: Backend>(
    writer: &Pool<B>,
    delivery_id: &DeliveryId,
    node: &str,
    until: Timestamp,
) -> StoreResult<bool> {
    let q = query(
        "UPDATE deliveries SET leased_until = $1
         WHERE id = $2 AND leased_by = $3 AND state = 'pending'",
    );
    let done = B::execute(writer, q.b(until.millis()).s(delivery_id).s(node)).await?;
    Ok(done == 1)
}

pub(crate) async fn release_leases<B: Backend>(
    writer: &Pool<B>,
    delivery_ids: &[DeliveryId],
    node: &str,
) -> StoreResult<()> {
    for chunk in delivery_ids.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<&str> = chunk.iter().map(DeliveryId::as_str).collect();
        let q = query(sql::<B>(
            "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
             WHERE id IN (SELECT value FROM json_each($1)) AND leased_by = $2",
            "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
             WHERE id = ANY($1) AND leased_by = $2",
        ));
        B::execute(writer, q.ids(&ids).s(node)).await?;
    }
    // Work handed back is for any node: wake the idle ones.
    B::notify_work(writer).await
}

/// Frees every lease, for a database one node uses alone: any lease found at start belongs
/// to a previous run of this very node. Where nodes share the database, others may hold
/// leases right now: they are never freed from here (a crashed node's leases expire).
pub(crate) async fn release_all_leases<B: Backend>(writer: &Pool<B>) -> StoreResult<u64> {
    if B::SHARED {
        return Ok(0);
    }
    let q = query(
        "UPDATE deliveries SET leased_until = NULL, leased_by = NULL
         WHERE state = 'pending' AND leased_by IS NOT NULL",
    );
    Ok(B::execute(writer, q).await?)
}

pub(crate) async fn queue_depth<B: Backend>(
    reader: &Pool<B>,
    now: Timestamp,
) -> StoreResult<QueueDepth> {
    // The partial index on pending deliveries bounds the scan to the queue itself.
    let q = query(sql::<B>(
        "SELECT COALESCE(SUM(free AND next_attempt_at <= $1), 0) AS due,
                COALESCE(SUM(free AND next_attempt_at > $1), 0) AS scheduled,
                COALESCE(SUM(NOT free), 0) AS leased
         FROM (SELECT next_attempt_at, COALESCE(leased_until, 0) < $1 AS free
               FROM deliveries WHERE state = 'pending')",
        "SELECT COUNT(*) FILTER (WHERE free AND next_attempt_at <= $1) AS due,
                COUNT(*) FILTER (WHERE free AND next_attempt_at > $1) AS scheduled,
                COUNT(*) FILTER (WHERE NOT free) AS leased
         FROM (SELECT next_attempt_at, COALESCE(leased_until, 0) < $1 AS free
               FROM deliveries WHERE state = 'pending') AS pending",
    ));
    let row = B::fetch_one(reader, q.b(now.millis())).await?;
    // Webhooks are few beside deliveries: a plain count.
    let disabled = query(sql::<B>(
        "SELECT COALESCE(SUM(disabled_reason IS NULL OR disabled_reason = 'manual'), 0) AS manual,
                COALESCE(SUM(disabled_reason = 'gone'), 0) AS gone,
                COALESCE(SUM(disabled_reason = 'failing'), 0) AS failing
         FROM webhooks WHERE is_active = 0",
        "SELECT COUNT(*) FILTER (WHERE disabled_reason IS NULL OR disabled_reason = 'manual')
                    AS manual,
                COUNT(*) FILTER (WHERE disabled_reason = 'gone') AS gone,
                COUNT(*) FILTER (WHERE disabled_reason = 'failing') AS failing
         FROM webhooks WHERE NOT is_active",
    ));
    let counts = B::fetch_one(reader, disabled).await?;
    Ok(QueueDepth {
        due: get::<B, _>(&row, "due")?,
        scheduled: get::<B, _>(&row, "scheduled")?,
        leased: get::<B, _>(&row, "leased")?,
        disabled_webhooks: [
            get::<B, _>(&counts, "manual")?,
            get::<B, _>(&counts, "gone")?,
            get::<B, _>(&counts, "failing")?,
        ],
    })
}

/// Says this node is alive, where nodes share the database (see `Store::heartbeat`).
pub(crate) async fn heartbeat<B: Backend>(
    writer: &Pool<B>,
    node: &str,
    at: Timestamp,
) -> StoreResult<()> {
    if !B::SHARED {
        return Ok(());
    }
    let q = query(
        "INSERT INTO nodes (id, heartbeat_at) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    );
    B::execute(writer, q.s(node).b(at.millis())).await?;
    // Rows of nodes long gone, so the table stays the size of the cluster.
    let q = query("DELETE FROM nodes WHERE heartbeat_at < $1").b(at.millis() - 24 * 3600 * 1000);
    B::execute(writer, q).await?;
    Ok(())
}

/// This node is stopping: forget its heartbeat.
pub(crate) async fn retire<B: Backend>(writer: &Pool<B>, node: &str) -> StoreResult<()> {
    if !B::SHARED {
        return Ok(());
    }
    B::execute(writer, query("DELETE FROM nodes WHERE id = $1").s(node)).await?;
    Ok(())
}
