//! Multi-row INSERT statements, written once; [`values_list`] spells the placeholders for
//! each backend.

use super::StoreResult;
use super::backend::{Backend, Bind, query_built, values_list};
use super::record::LogRow;
use crate::domain::event::NewEvent;
use crate::domain::id::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

/// A new pending delivery, due when it is created; leased at once to `lease` (node, until)
/// when the node creating it will attempt it.
pub(crate) struct DeliveryRow<'a> {
    pub id: &'a DeliveryId,
    pub tenant_id: &'a TenantId,
    pub event_id: &'a EventId,
    pub webhook_id: &'a WebhookId,
    pub at: Timestamp,
    pub lease: Option<(&'a str, Timestamp)>,
}

pub(crate) async fn insert_events<B: Backend>(
    conn: &mut B::Connection,
    events: &[&NewEvent],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO events (id, tenant_id, event_type, body, idempotency_key, created_at)
         VALUES {}",
        values_list::<B>(events.len(), 6, 1)
    );
    let mut q = query_built::<B>(sql);
    for e in events {
        q = q
            .s(&e.id)
            .s(&e.tenant_id)
            .s(e.event_type)
            .s(&e.body)
            .os(e.idempotency_key.as_deref())
            .b(e.created_at.millis());
    }
    B::execute_on(conn, q).await?;
    Ok(())
}

pub(crate) async fn insert_deliveries<B: Backend>(
    conn: &mut B::Connection,
    rows: &[DeliveryRow<'_>],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, state, attempts,
            next_attempt_at, leased_until, leased_by, created_at, updated_at)
         VALUES {}",
        values_list::<B>(rows.len(), 11, 1)
    );
    let mut q = query_built::<B>(sql);
    for d in rows {
        let at = d.at.millis();
        q = q
            .s(d.id)
            .s(d.tenant_id)
            .s(d.event_id)
            .s(d.webhook_id)
            .s("pending")
            .b(0_i64)
            .b(at)
            .b(d.lease.map(|(_, until)| until.millis()))
            .os(d.lease.map(|(node, _)| node))
            .b(at)
            .b(at);
    }
    B::execute_on(conn, q).await?;
    Ok(())
}

pub(crate) async fn insert_logs<B: Backend>(
    conn: &mut B::Connection,
    rows: &[LogRow<'_>],
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO webhook_logs (id, tenant_id, webhook_id, delivery_id, event_id,
            event_type, payload, request_headers, response_status, response_body,
            response_body_truncated, response_time_ms, error_message, attempt_count,
            is_success, is_test, created_at)
         VALUES {}",
        values_list::<B>(rows.len(), 17, 1)
    );
    let mut q = query_built::<B>(sql);
    for row in rows {
        q = q
            .s(row.id)
            .s(row.tenant_id)
            .s(row.webhook_id)
            .os(row.delivery_id)
            .os(row.event_id)
            .s(row.event_type)
            .os(row.payload)
            .os(row.request_headers)
            .b(row.response_status)
            .os(row.response_body)
            .b(row.response_body_truncated)
            .b(row.response_time_ms)
            .os(row.error_message)
            .b(row.attempt_count)
            .b(row.is_success)
            .b(row.is_test)
            .b(row.created_at.millis());
    }
    B::execute_on(conn, q).await?;
    Ok(())
}
