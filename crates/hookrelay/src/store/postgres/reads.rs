//! Reading what happened on PostgreSQL: the SQL text; the code is shared (`store/reads.rs`).

use sqlx::{PgPool, Row};

use super::{delivery_from, log_from, opt_ts, ts};
use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::store::{EventDetail, LogEntry, LogFilter, Page, StoreResult, WebhookStats};

mod sql {
    pub const EVENT: &str = "SELECT * FROM events WHERE id = $1 AND tenant_id = $2";
    pub const EVENT_DELIVERIES: &str = "SELECT * FROM deliveries WHERE event_id = $1 ORDER BY id";
    pub const LOGS: &str = concat!(
        crate::store::reads::log_select!(),
        "
         WHERE l.webhook_id = $1 AND l.tenant_id = $2
           AND (l.created_at, l.id) < ($3, $4)
           AND ($5::TEXT IS NULL OR l.event_type = $5)
           AND ($6::BOOLEAN IS NULL OR l.is_success = $6)
           AND ($7::BIGINT IS NULL OR l.created_at >= $7)
           AND ($8::BIGINT IS NULL OR l.created_at < $8)
         ORDER BY l.created_at DESC, l.id DESC
         LIMIT $9"
    );
    pub const LOG: &str = concat!(
        crate::store::reads::log_select!(),
        "
         WHERE l.id = $1 AND l.webhook_id = $2 AND l.tenant_id = $3"
    );
    pub const STATS_COUNTERS: &str =
        "SELECT total_deliveries, successful_deliveries, failed_deliveries
         FROM webhooks WHERE id = $1 AND tenant_id = $2";
    pub const STATS_ENDED_SINCE: &str = "SELECT COUNT(*) FILTER (WHERE state = 'succeeded') AS ok,
                        COUNT(*) FILTER (WHERE state = 'failed') AS failed
                 FROM deliveries
                 WHERE webhook_id = $1 AND state IN ('succeeded', 'failed') AND completed_at >= $2";
    pub const STATS_PENDING: &str =
        "SELECT COUNT(*) AS n FROM deliveries WHERE webhook_id = $1 AND state = 'pending'";
    pub const STATS_ATTEMPTS: &str =
        "SELECT COUNT(*) AS attempts, COUNT(*) FILTER (WHERE is_success) AS ok,
                AVG(response_time_ms)::DOUBLE PRECISION AS avg_ms, COUNT(response_time_ms) AS timed,
                MAX(CASE WHEN is_success THEN created_at END) AS last_ok,
                MAX(CASE WHEN NOT is_success THEN created_at END) AS last_fail
         FROM webhook_logs WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2";
    pub const STATS_PERCENTILE: &str = "SELECT response_time_ms FROM webhook_logs
                 WHERE webhook_id = $1 AND NOT is_test AND created_at >= $2
                   AND response_time_ms IS NOT NULL
                 ORDER BY response_time_ms LIMIT 1 OFFSET $3";
    pub const STATS_CONSECUTIVE_FAILURES: &str = "SELECT COUNT(*) AS n FROM webhook_logs
         WHERE webhook_id = $1 AND NOT is_test AND NOT is_success
           AND created_at > COALESCE((SELECT MAX(created_at) FROM webhook_logs
                                      WHERE webhook_id = $2 AND NOT is_test AND is_success), -1)";
}

crate::store::reads::reads!(PgPool);
