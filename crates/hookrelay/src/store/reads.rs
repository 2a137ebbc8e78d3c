//! Reading what happened (events with their deliveries, attempt logs, statistics), written
//! once for every backend.

use sqlx::Pool;

use super::backend::{Backend, Bind, get, get_id, query, sql};
use super::rows::{delivery_from, log_from, opt_ts, ts};
use super::{
    DeliveryFilter, DeliveryInfo, EventDetail, LogEntry, LogFilter, Page, StoreResult, WebhookStats,
};
use crate::domain::delivery::DeliveryState;
use crate::domain::id;
use crate::domain::id::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

/// The attempt-log SELECT (the payload of a delivery attempt is its event's body, joined),
/// for `concat!` with a WHERE clause.
macro_rules! log_select {
    () => {
        "SELECT l.id, l.tenant_id, l.webhook_id, l.delivery_id, l.event_id,
            l.event_type, COALESCE(l.payload, e.body, '') AS payload, l.request_headers,
            l.response_status, l.response_body, l.response_body_truncated, l.response_time_ms,
            l.error_message, l.attempt_count, l.is_success, l.is_test, l.created_at
         FROM webhook_logs l LEFT JOIN events e ON e.id = l.event_id"
    };
}

/// The delivery SELECT with its event's type, for `concat!` with a WHERE clause.
macro_rules! delivery_select {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.event_id, e.event_type, d.webhook_id, d.state, d.attempts,
                d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at,
                d.completed_at
             FROM deliveries d JOIN events e ON e.id = d.event_id",
            $where
        )
    };
}

pub(crate) async fn delivery<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    id: &DeliveryId,
) -> StoreResult<Option<(DeliveryInfo, Vec<LogEntry>)>> {
    let q = query(delivery_select!(
        " WHERE d.id = $1 AND d.webhook_id = $2 AND d.tenant_id = $3"
    ));
    let Some(row) = B::fetch_optional(reader, q.s(id).s(webhook_id).s(tenant_id)).await? else {
        return Ok(None);
    };
    let delivery = delivery_from::<B>(&row)?;
    // Every attempt began after the delivery was made and was recorded by its last update:
    // the (webhook_id, created_at) index bounds the scan to the delivery's lifetime.
    let q = query(concat!(
        log_select!(),
        " WHERE l.webhook_id = $1 AND l.delivery_id = $2
            AND l.created_at >= $3 AND l.created_at <= $4
          ORDER BY l.created_at, l.id LIMIT 1000"
    ));
    let q = q
        .s(webhook_id)
        .s(id)
        .b(delivery.created_at.millis())
        .b(delivery.updated_at.millis());
    let attempts = B::fetch_all(reader, q)
        .await?
        .iter()
        .map(log_from::<B>)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some((delivery, attempts)))
}

pub(crate) async fn event<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    id: &EventId,
) -> StoreResult<Option<EventDetail>> {
    let q = query("SELECT * FROM events WHERE id = $1 AND tenant_id = $2");
    let Some(row) = B::fetch_optional(reader, q.s(id).s(tenant_id)).await? else {
        return Ok(None);
    };
    let q = query(delivery_select!(" WHERE d.event_id = $1 ORDER BY d.id"));
    let deliveries = B::fetch_all(reader, q.s(id))
        .await?
        .iter()
        .map(delivery_from::<B>)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(EventDetail {
        id: get_id::<B, _>(&row, "id")?,
        tenant_id: get_id::<B, _>(&row, "tenant_id")?,
        event_type: get::<B, _>(&row, "event_type")?,
        idempotency_key: get::<B, _>(&row, "idempotency_key")?,
        created_at: ts::<B>(&row, "created_at")?,
        body: get::<B, _>(&row, "body")?,
        deliveries,
    }))
}

/// A page of the webhook's deliveries, newest first. Without a state, one index range per
/// state, merged: each is a short backwards walk of (webhook_id, state, id), where a single
/// scan would read and sort every delivery the webhook ever had.
pub(crate) async fn deliveries<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    filter: &DeliveryFilter,
    page: &Page,
) -> StoreResult<Vec<DeliveryInfo>> {
    let until = filter.until.map(|t| id::floor_at(id::DELIVERY, t));
    let upper = match (page.before.as_deref(), until.as_deref()) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => "~",
    };
    let lower = filter
        .since
        .map_or_else(String::new, |t| id::floor_at(id::DELIVERY, t));
    let states = match filter.state {
        Some(state) => vec![state],
        None => DeliveryState::ALL.to_vec(),
    };
    let mut out = Vec::new();
    for state in states {
        let q = query(delivery_select!(
            " WHERE d.webhook_id = $1 AND d.tenant_id = $2 AND d.state = $3
                AND d.id < $4 AND d.id >= $5
              ORDER BY d.id DESC LIMIT $6"
        ));
        let q = q
            .s(webhook_id)
            .s(tenant_id)
            .s(state.as_str())
            .s(upper)
            .s(&lower)
            .b(i64::from(page.limit));
        for row in B::fetch_all(reader, q).await? {
            out.push(delivery_from::<B>(&row)?);
        }
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    out.truncate(page.limit as usize);
    Ok(out)
}

pub(crate) async fn logs<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
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
    let q = query(sql::<B>(
        concat!(
            log_select!(),
            "
             WHERE l.webhook_id = $1 AND l.tenant_id = $2
               AND (l.created_at, l.id) < ($3, $4)
               AND ($5 IS NULL OR l.event_type = $5)
               AND ($6 IS NULL OR l.is_success = $6)
               AND ($7 IS NULL OR l.created_at >= $7)
               AND ($8 IS NULL OR l.created_at < $8)
             ORDER BY l.created_at DESC, l.id DESC
             LIMIT $9"
        ),
        concat!(
            log_select!(),
            "
             WHERE l.webhook_id = $1 AND l.tenant_id = $2
               AND (l.created_at, l.id) < ($3, $4)
               AND ($5::TEXT IS NULL OR l.event_type = $5)
               AND ($6::BOOLEAN IS NULL OR l.is_success = $6)
               AND ($7::BIGINT IS NULL OR l.created_at >= $7)
               AND ($8::BIGINT IS NULL OR l.created_at < $8)
             ORDER BY l.created_at DESC, l.id DESC
             LIMIT $9"
        ),
    ))
    .s(webhook_id)
    .s(tenant_id)
    .b(before_at)
    .s(before_id)
    .os(filter.event_type.as_deref())
    .b(filter.success)
    .b(filter.since.map(Timestamp::millis))
    .b(filter.until.map(Timestamp::millis))
    .b(i64::from(page.limit));
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(log_from::<B>)
        .collect()
}

pub(crate) async fn log<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    id: &AttemptId,
) -> StoreResult<Option<LogEntry>> {
    let q = query(concat!(
        log_select!(),
        " WHERE l.id = $1 AND l.webhook_id = $2 AND l.tenant_id = $3"
    ));
    B::fetch_optional(reader, q.s(id).s(webhook_id).s(tenant_id))
        .await?
        .as_ref()
        .map(log_from::<B>)
        .transpose()
}

pub(crate) async fn stats<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    since: Option<Timestamp>,
) -> StoreResult<Option<WebhookStats>> {
    let q = query(
        "SELECT total_deliveries, successful_deliveries, failed_deliveries, filtered_events
         FROM webhooks WHERE id = $1 AND tenant_id = $2",
    );
    let Some(hook) = B::fetch_optional(reader, q.s(webhook_id).s(tenant_id)).await? else {
        return Ok(None);
    };
    let mut stats = WebhookStats {
        filtered_events: get::<B, _>(&hook, "filtered_events")?,
        ..WebhookStats::default()
    };
    match since {
        None => {
            stats.total_deliveries = get::<B, _>(&hook, "total_deliveries")?;
            stats.successful_deliveries = get::<B, _>(&hook, "successful_deliveries")?;
            stats.failed_deliveries = get::<B, _>(&hook, "failed_deliveries")?;
        }
        Some(since) => {
            let q = query(sql::<B>(
                "SELECT COALESCE(SUM(state = 'succeeded'), 0) AS ok,
                        COALESCE(SUM(state = 'failed'), 0) AS failed
                 FROM deliveries
                 WHERE webhook_id = $1 AND state IN ('succeeded', 'failed') AND completed_at >= $2",
                "SELECT COUNT(*) FILTER (WHERE state = 'succeeded') AS ok,
                        COUNT(*) FILTER (WHERE state = 'failed') AS failed
                 FROM deliveries
                 WHERE webhook_id = $1 AND state IN ('succeeded', 'failed') AND completed_at >= $2",
            ));
            let row = B::fetch_one(reader, q.s(webhook_id).b(since.millis())).await?;
            stats.successful_deliveries = get::<B, _>(&row, "ok")?;
            stats.failed_deliveries = get::<B, _>(&row, "failed")?;
            stats.total_deliveries = stats.successful_deliveries + stats.failed_deliveries;
        }
    }
    let q =
        query("SELECT COUNT(*) AS n FROM deliveries WHERE webhook_id = $1 AND state = 'pending'");
    stats.pending_deliveries = get::<B, _>(&B::fetch_one(reader, q.s(webhook_id)).await?, "n")?;

    let from = since.map_or(i64::MIN, Timestamp::millis);
    let q = query(sql::<B>(
        "SELECT COUNT(*) AS attempts, COALESCE(SUM(is_success), 0) AS ok,
                AVG(response_time_ms) AS avg_ms, COUNT(response_time_ms) AS timed,
                MAX(CASE WHEN is_success THEN created_at END) AS last_ok,
                MAX(CASE WHEN NOT is_success THEN created_at END) AS last_fail
         FROM webhook_logs WHERE webhook_id = $1 AND is_test = 0 AND created_at >= $2",
        "SELECT COUNT(*) AS attempts, COUNT(*) FILTER (WHERE is_success) AS ok,
                AVG(response_time_ms)::DOUBLE PRECISION AS avg_ms, COUNT(response_time_ms) AS timed,
                MAX(CASE WHEN is_success THEN created_at END) AS last_ok,
                MAX(CASE WHEN NOT is_success THEN created_at END) AS last_fail
         FROM webhook_logs WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2",
    ));
    let row = B::fetch_one(reader, q.s(webhook_id).b(from)).await?;
    stats.attempts = get::<B, _>(&row, "attempts")?;
    stats.successful_attempts = get::<B, _>(&row, "ok")?;
    stats.avg_response_time_ms = get::<B, _>(&row, "avg_ms")?;
    stats.last_success_at = opt_ts::<B>(&row, "last_ok")?;
    stats.last_failure_at = opt_ts::<B>(&row, "last_fail")?;
    let timed: i64 = get::<B, _>(&row, "timed")?;
    let percentile = |p: f64| {
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let rank = ((p * timed as f64).ceil() as i64).clamp(1, timed.max(1));
        rank - 1
    };
    if timed > 0 {
        let mut values = [None; 3];
        for (slot, p) in values.iter_mut().zip([0.50, 0.95, 0.99]) {
            let q = query(sql::<B>(
                "SELECT response_time_ms FROM webhook_logs
                 WHERE webhook_id = $1 AND is_test = 0 AND created_at >= $2
                   AND response_time_ms IS NOT NULL
                 ORDER BY response_time_ms LIMIT 1 OFFSET $3",
                "SELECT response_time_ms FROM webhook_logs
                 WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2
                   AND response_time_ms IS NOT NULL
                 ORDER BY response_time_ms LIMIT 1 OFFSET $3",
            ));
            let row = B::fetch_optional(reader, q.s(webhook_id).b(from).b(percentile(p))).await?;
            *slot = row
                .map(|r| get::<B, i64>(&r, "response_time_ms"))
                .transpose()?;
        }
        [
            stats.p50_response_time_ms,
            stats.p95_response_time_ms,
            stats.p99_response_time_ms,
        ] = values;
    }
    let q = query(sql::<B>(
        "SELECT COUNT(*) AS n FROM webhook_logs
         WHERE webhook_id = $1 AND is_test = 0 AND is_success = 0
           AND created_at > COALESCE((SELECT MAX(created_at) FROM webhook_logs
                                      WHERE webhook_id = $1 AND is_test = 0 AND is_success = 1), -1)",
        "SELECT COUNT(*) AS n FROM webhook_logs
         WHERE webhook_id = $1 AND NOT is_test AND NOT is_success
           AND created_at > COALESCE((SELECT MAX(created_at) FROM webhook_logs
                                      WHERE webhook_id = $1 AND NOT is_test AND is_success), -1)",
    ));
    stats.consecutive_failures = get::<B, _>(&B::fetch_one(reader, q.s(webhook_id)).await?, "n")?;
    Ok(Some(stats))
}
