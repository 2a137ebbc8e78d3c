//! Reading what happened: events with their deliveries, attempt logs, statistics.

use sqlx::{PgPool, Row};

use super::{LOG_COLUMNS, delivery_from, log_from, opt_ts, ts};
use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::store::{EventDetail, LogEntry, LogFilter, Page, StoreResult, WebhookStats};

pub(super) async fn event(
    pool: &PgPool,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<EventDetail>> {
    let Some(row) = sqlx::query("SELECT * FROM events WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let deliveries = sqlx::query("SELECT * FROM deliveries WHERE event_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(delivery_from)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(EventDetail {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        event_type: row.try_get("event_type")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at: ts(&row, "created_at")?,
        body: row.try_get("body")?,
        deliveries,
    }))
}

pub(super) async fn logs(
    pool: &PgPool,
    tenant_id: &str,
    webhook_id: &str,
    filter: &LogFilter,
    page: &Page,
) -> StoreResult<Vec<LogEntry>> {
    // Keyset on (created_at, id): an attempt id embeds its created_at, so the cursor id alone
    // gives both, and the (webhook_id, created_at) index serves the scan.
    let (before_at, before_id) = match page.before.as_deref() {
        Some(cursor) => (
            id::time_of(cursor).map_or(i64::MIN, Timestamp::millis),
            cursor,
        ),
        None => (i64::MAX, "~"),
    };
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM webhook_logs l LEFT JOIN events e ON e.id = l.event_id
         WHERE l.webhook_id = $1 AND l.tenant_id = $2
           AND (l.created_at, l.id) < ($3, $4)
           AND ($5::TEXT IS NULL OR l.event_type = $5)
           AND ($6::BOOLEAN IS NULL OR l.is_success = $6)
           AND ($7::BIGINT IS NULL OR l.created_at >= $7)
           AND ($8::BIGINT IS NULL OR l.created_at < $8)
         ORDER BY l.created_at DESC, l.id DESC
         LIMIT $9"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(webhook_id)
        .bind(tenant_id)
        .bind(before_at)
        .bind(before_id)
        .bind(&filter.event_type)
        .bind(filter.success)
        .bind(filter.since.map(Timestamp::millis))
        .bind(filter.until.map(Timestamp::millis))
        .bind(i64::from(page.limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(log_from)
        .collect()
}

pub(super) async fn log(
    pool: &PgPool,
    tenant_id: &str,
    webhook_id: &str,
    id: &str,
) -> StoreResult<Option<LogEntry>> {
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM webhook_logs l LEFT JOIN events e ON e.id = l.event_id
         WHERE l.id = $1 AND l.webhook_id = $2 AND l.tenant_id = $3"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(webhook_id)
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(log_from)
        .transpose()
}

pub(super) async fn stats(
    pool: &PgPool,
    tenant_id: &str,
    webhook_id: &str,
    since: Option<Timestamp>,
) -> StoreResult<Option<WebhookStats>> {
    let Some(hook) = sqlx::query(
        "SELECT total_deliveries, successful_deliveries, failed_deliveries
         FROM webhooks WHERE id = $1 AND tenant_id = $2",
    )
    .bind(webhook_id)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let mut stats = WebhookStats::default();
    match since {
        None => {
            stats.total_deliveries = hook.try_get("total_deliveries")?;
            stats.successful_deliveries = hook.try_get("successful_deliveries")?;
            stats.failed_deliveries = hook.try_get("failed_deliveries")?;
        }
        Some(since) => {
            let row = sqlx::query(
                "SELECT COUNT(*) FILTER (WHERE state = 'succeeded') AS ok,
                        COUNT(*) FILTER (WHERE state = 'failed') AS failed
                 FROM deliveries
                 WHERE webhook_id = $1 AND state IN ('succeeded', 'failed') AND completed_at >= $2",
            )
            .bind(webhook_id)
            .bind(since.millis())
            .fetch_one(pool)
            .await?;
            stats.successful_deliveries = row.try_get("ok")?;
            stats.failed_deliveries = row.try_get("failed")?;
            stats.total_deliveries = stats.successful_deliveries + stats.failed_deliveries;
        }
    }
    stats.pending_deliveries = sqlx::query(
        "SELECT COUNT(*) AS n FROM deliveries WHERE webhook_id = $1 AND state = 'pending'",
    )
    .bind(webhook_id)
    .fetch_one(pool)
    .await?
    .try_get("n")?;

    let from = since.map_or(i64::MIN, Timestamp::millis);
    let row = sqlx::query(
        "SELECT COUNT(*) AS attempts, COUNT(*) FILTER (WHERE is_success) AS ok,
                AVG(response_time_ms)::DOUBLE PRECISION AS avg_ms, COUNT(response_time_ms) AS timed,
                MAX(CASE WHEN is_success THEN created_at END) AS last_ok,
                MAX(CASE WHEN NOT is_success THEN created_at END) AS last_fail
         FROM webhook_logs WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2",
    )
    .bind(webhook_id)
    .bind(from)
    .fetch_one(pool)
    .await?;
    stats.attempts = row.try_get("attempts")?;
    stats.successful_attempts = row.try_get("ok")?;
    stats.avg_response_time_ms = row.try_get("avg_ms")?;
    stats.last_success_at = opt_ts(&row, "last_ok")?;
    stats.last_failure_at = opt_ts(&row, "last_fail")?;
    let timed: i64 = row.try_get("timed")?;
    let percentile = |p: f64| {
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let rank = ((p * timed as f64).ceil() as i64).clamp(1, timed.max(1));
        rank - 1
    };
    if timed > 0 {
        let mut values = [None; 3];
        for (slot, p) in values.iter_mut().zip([0.50, 0.95, 0.99]) {
            let row = sqlx::query(
                "SELECT response_time_ms FROM webhook_logs
                 WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2
                   AND response_time_ms IS NOT NULL
                 ORDER BY response_time_ms LIMIT 1 OFFSET $3",
            )
            .bind(webhook_id)
            .bind(from)
            .bind(percentile(p))
            .fetch_optional(pool)
            .await?;
            *slot = row.map(|r| r.try_get::<i64, _>(0)).transpose()?;
        }
        [
            stats.p50_response_time_ms,
            stats.p95_response_time_ms,
            stats.p99_response_time_ms,
        ] = values;
    }
    stats.consecutive_failures = sqlx::query(
        "SELECT COUNT(*) AS n FROM webhook_logs
         WHERE webhook_id = $1 AND NOT is_test AND NOT is_success
           AND created_at > COALESCE((SELECT MAX(created_at) FROM webhook_logs
                                      WHERE webhook_id = $2 AND NOT is_test AND is_success), -1)",
    )
    .bind(webhook_id)
    .bind(webhook_id)
    .fetch_one(pool)
    .await?
    .try_get("n")?;
    Ok(Some(stats))
}
