//! Recording finished attempts, written once for every backend: delivery states under the
//! lease, one log row per attempt, and the webhook counters once per delivery, in one
//! transaction.

use std::collections::{HashMap, HashSet};

use sqlx::Pool;

use super::backend::{Backend, Bind, Dialect, get, query_built, sql, values_list};
use super::bulk::insert_logs;
use super::ingest::ROWS_PER_STATEMENT;
use super::{LogEntry, Recorded, StoreResult, health, notices};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, DeliveryState, Next};
use crate::domain::health::{HealthRules, Transition};
use crate::domain::id::{DeliveryId, EventId};
use crate::domain::time::Timestamp;

/// Counter increments for one webhook from one batch of attempts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CounterDelta {
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub last_triggered_at: i64,
}

/// Records one batch of attempts, committed before returning: with them, the webhooks'
/// health (`store/health.rs`) and the operational events it causes (`store/notices.rs`).
pub(crate) async fn record<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    records: &[AttemptRecord],
    node: &str,
    rules: &HealthRules,
) -> StoreResult<Recorded> {
    let mut tx = writer.begin().await?;
    let mut held = HashSet::with_capacity(records.len());
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        held.extend(update_states::<B>(&mut *tx, chunk, node).await?);
    }
    // One log row per attempt, whether or not the lease was still held: it happened.
    let rows: Vec<LogRow<'_>> = records.iter().map(LogRow::of_attempt).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_logs::<B>(&mut *tx, chunk).await?;
    }
    // Health before counters: it locks the batch's webhook rows in id order first.
    let changed = health::apply::<B>(&mut *tx, records, &held, rules).await?;
    let deltas = counter_deltas(records, &held);
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        add_counters::<B>(&mut *tx, chunk).await?;
    }
    let now = records
        .iter()
        .map(|r| r.recorded_at)
        .max()
        .unwrap_or_else(Timestamp::now);
    let events = notices::of_batch(&changed, records, &held, now);
    let notices = notices::emit::<B>(&mut *tx, keys, events).await?;
    let mut disabled = Vec::new();
    for c in &changed {
        if matches!(c.transition, Transition::Disabled(_)) {
            // Every node drops its queued work for it when this commits.
            B::webhook_changed_on(&mut *tx, c.webhook_id.as_str()).await?;
            disabled.push(c.webhook_id.clone());
        }
    }
    tx.commit().await?;
    Ok(Recorded { disabled, notices })
}

/// Logs a test send (no delivery, no counters).
pub(crate) async fn insert_test_log<B: Backend>(
    writer: &Pool<B>,
    entry: &LogEntry,
) -> StoreResult<()> {
    let mut conn = writer.acquire().await?;
    insert_logs::<B>(&mut *conn, std::slice::from_ref(&LogRow::of(entry))).await
}

/// Applies each delivery's new state where `node` still holds its lease; returns the ids it
/// applied to.
async fn update_states<B: Backend>(
    conn: &mut B::Connection,
    records: &[AttemptRecord],
    node: &str,
) -> StoreResult<HashSet<String>> {
    let width = 8;
    let node_param = records.len() * width + 1;
    let mut sql = format!(
        "WITH u(id, state, attempts, next_at, status, error, at, done_at) AS (VALUES {})
         UPDATE deliveries SET state = u.state, attempts = u.attempts,
             next_attempt_at = u.next_at, leased_until = NULL, leased_by = NULL,
             last_status = u.status, last_error = u.error, updated_at = u.at,
             completed_at = u.done_at
         FROM u WHERE deliveries.id = u.id AND deliveries.state = 'pending'
           AND deliveries.leased_by = ${node_param}",
        values_list::<B>(records.len(), width, 1)
    );
    // Restricting by primary key as well makes PostgreSQL's plan an index lookup per record
    // whatever the statistics say: on a table never analysed (a fresh database after a
    // burst) the planner otherwise compared every pending delivery with every record.
    let pin_ids = B::DIALECT == Dialect::Postgres;
    if pin_ids {
        sql.push_str(&format!(" AND deliveries.id = ANY(${})", node_param + 1));
    }
    sql.push_str(" RETURNING deliveries.id");
    let mut q = query_built::<B>(sql);
    for r in records {
        let (state, next_at, done_at) = state_after(r);
        q = q
            .s(&r.job.delivery_id)
            .s(state.as_str())
            .b(i64::from(r.job.attempt))
            .b(next_at.millis())
            .b(r.outcome.response_status.map(i64::from))
            .os(r.outcome.error.as_deref())
            .b(r.recorded_at.millis())
            .b(done_at.map(Timestamp::millis));
    }
    q = q.s(node);
    if pin_ids {
        let ids: Vec<&str> = records.iter().map(|r| r.job.delivery_id.as_str()).collect();
        q = q.ids(&ids);
    }
    let rows = B::fetch_all_on(conn, q).await?;
    rows.iter()
        .map(|row| Ok(get::<B, String>(row, "id")?))
        .collect()
}

async fn add_counters<B: Backend>(
    conn: &mut B::Connection,
    deltas: &[(&str, CounterDelta)],
) -> StoreResult<()> {
    let sql = format!(
        "WITH c(id, total, ok, failed, last) AS (VALUES {})
         UPDATE webhooks SET total_deliveries = total_deliveries + c.total,
             successful_deliveries = successful_deliveries + c.ok,
             failed_deliveries = failed_deliveries + c.failed,
             last_triggered_at = {}(COALESCE(last_triggered_at, 0), c.last)
         FROM c WHERE webhooks.id = c.id",
        values_list::<B>(deltas.len(), 5, 1),
        sql::<B>("MAX", "GREATEST"),
    );
    let mut q = query_built::<B>(sql);
    for (id, d) in deltas {
        q = q
            .s(id)
            .b(d.total)
            .b(d.succeeded)
            .b(d.failed)
            .b(d.last_triggered_at);
    }
    B::execute_on(conn, q).await?;
    Ok(())
}

/// A delivery counts once, when it first ends, and only if its lease was still held; one
/// queued again after failing moves the counters only if it now succeeds.
fn counter_deltas<'a>(
    records: &'a [AttemptRecord],
    held: &HashSet<String>,
) -> Vec<(&'a str, CounterDelta)> {
    let mut counters: HashMap<&str, CounterDelta> = HashMap::new();
    for r in records {
        let delta = counters
            .entry(r.job.target.webhook_id.as_str())
            .or_default();
        delta.last_triggered_at = delta.last_triggered_at.max(r.outcome.started_at.millis());
        let (state, _, _) = state_after(r);
        if state == DeliveryState::Pending || !held.contains(r.job.delivery_id.as_str()) {
            continue;
        }
        if r.job.counted {
            // Already counted as failed: only a success changes the outcome.
            if state == DeliveryState::Succeeded {
                delta.succeeded += 1;
                delta.failed -= 1;
            }
        } else {
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
            id: r.log_id.as_str(),
            tenant_id: r.job.tenant_id.as_str(),
            webhook_id: r.job.target.webhook_id.as_str(),
            delivery_id: Some(r.job.delivery_id.as_str()),
            event_id: Some(r.job.event_id.as_str()),
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
            id: entry.id.as_str(),
            tenant_id: entry.tenant_id.as_str(),
            webhook_id: entry.webhook_id.as_str(),
            delivery_id: entry.delivery_id.as_ref().map(DeliveryId::as_str),
            event_id: entry.event_id.as_ref().map(EventId::as_str),
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
