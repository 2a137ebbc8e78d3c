//! Reading what happened (events with their deliveries, attempt logs, statistics), written
//! once: each backend's reads module defines its SQL text in a module `sql` and invokes
//! [`reads!`] with its pool type.

/// The attempt-log SELECT both backends share (the payload of a delivery attempt is its
/// event's body, joined), for `concat!` with each backend's WHERE clause.
macro_rules! log_select {
    () => {
        "SELECT l.id, l.tenant_id, l.webhook_id, l.delivery_id, l.event_id,
            l.event_type, COALESCE(l.payload, e.body, '') AS payload, l.request_headers,
            l.response_status, l.response_body, l.response_body_truncated, l.response_time_ms,
            l.error_message, l.attempt_count, l.is_success, l.is_test, l.created_at FROM webhook_logs l LEFT JOIN events e ON e.id = l.event_id"
    };
}

pub(crate) use log_select;

macro_rules! reads {
    ($pool:ty) => {
        pub(super) async fn event(
            pool: &$pool,
            tenant_id: &str,
            id: &str,
        ) -> StoreResult<Option<EventDetail>> {
            let Some(row) = sqlx::query(sql::EVENT)
                .bind(id)
                .bind(tenant_id)
                .fetch_optional(pool)
                .await?
            else {
                return Ok(None);
            };
            let deliveries = sqlx::query(sql::EVENT_DELIVERIES)
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
            pool: &$pool,
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
            sqlx::query(sql::LOGS)
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
            pool: &$pool,
            tenant_id: &str,
            webhook_id: &str,
            id: &str,
        ) -> StoreResult<Option<LogEntry>> {
            sqlx::query(sql::LOG)
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
            pool: &$pool,
            tenant_id: &str,
            webhook_id: &str,
            since: Option<Timestamp>,
        ) -> StoreResult<Option<WebhookStats>> {
            let Some(hook) = sqlx::query(sql::STATS_COUNTERS)
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
                    let row = sqlx::query(sql::STATS_ENDED_SINCE)
                        .bind(webhook_id)
                        .bind(since.millis())
                        .fetch_one(pool)
                        .await?;
                    stats.successful_deliveries = row.try_get("ok")?;
                    stats.failed_deliveries = row.try_get("failed")?;
                    stats.total_deliveries = stats.successful_deliveries + stats.failed_deliveries;
                }
            }
            stats.pending_deliveries = sqlx::query(sql::STATS_PENDING)
                .bind(webhook_id)
                .fetch_one(pool)
                .await?
                .try_get("n")?;

            let from = since.map_or(i64::MIN, Timestamp::millis);
            let row = sqlx::query(sql::STATS_ATTEMPTS)
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
                    let row = sqlx::query(sql::STATS_PERCENTILE)
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
            stats.consecutive_failures = sqlx::query(sql::STATS_CONSECUTIVE_FAILURES)
                .bind(webhook_id)
                .bind(webhook_id)
                .fetch_one(pool)
                .await?
                .try_get("n")?;
            Ok(Some(stats))
        }
    };
}

pub(crate) use reads;
