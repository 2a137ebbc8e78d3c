//! Acting on deliveries after the fact, written once for every backend: a failed delivery
//! queued again, and a stored event sent again.

use sqlx::Pool;

use super::backend::{Backend, Bind, get, query};
use super::bulk::{DeliveryRow, insert_deliveries};
use super::ingest::ROWS_PER_STATEMENT;
use super::{DeliveryInfo, Requeued, StoreResult};
use crate::domain::delivery::DeliveryState;
use crate::domain::id::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;

/// The columns a delivery queued again starts from, for `concat!`: no lease, a new chain of
/// attempts, its earlier failure already counted. The due time is `$due`; the caller binds
/// `$1` (now) and `$2` (true).
macro_rules! requeue_set {
    ($due:literal) => {
        concat!(
            "state = 'pending', attempts = 0, next_attempt_at = ",
            $due,
            ", leased_until = NULL, leased_by = NULL, updated_at = $1, completed_at = NULL,
             counted = $2"
        )
    };
}

pub(crate) async fn retry_delivery<B: Backend>(
    writer: &Pool<B>,
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    id: &DeliveryId,
    now: Timestamp,
) -> StoreResult<Requeued> {
    let mut tx = writer.begin().await?;
    let q = query(concat!(
        "UPDATE deliveries SET ",
        requeue_set!("$1"),
        " WHERE id = $3 AND webhook_id = $4 AND tenant_id = $5 AND state = 'failed'"
    ));
    let q = q.b(now.millis()).b(true).s(id).s(webhook_id).s(tenant_id);
    let queued = B::execute_on(&mut *tx, q).await? > 0;
    if queued {
        B::notify_work_on(&mut *tx).await?;
    }
    tx.commit().await?;
    let found = super::reads::delivery(reader, tenant_id, webhook_id, id).await?;
    Ok(match found {
        None => Requeued::NotFound,
        Some((delivery, _)) if queued => Requeued::Queued(delivery),
        Some((delivery, _)) => Requeued::NotFailed(delivery.state),
    })
}

pub(crate) async fn replay<B: Backend>(
    writer: &Pool<B>,
    tenant_id: &TenantId,
    event_id: &EventId,
    webhook_ids: &[WebhookId],
    now: Timestamp,
) -> StoreResult<Option<Vec<DeliveryInfo>>> {
    let mut tx = writer.begin().await?;
    let q = query("SELECT event_type FROM events WHERE id = $1 AND tenant_id = $2");
    let Some(row) = B::fetch_optional_on(&mut *tx, q.s(event_id).s(tenant_id)).await? else {
        return Ok(None);
    };
    let event_type: String = get::<B, _>(&row, "event_type")?;
    let ids: Vec<DeliveryId> = webhook_ids.iter().map(|_| DeliveryId::new()).collect();
    let rows: Vec<DeliveryRow<'_>> = ids
        .iter()
        .zip(webhook_ids)
        .map(|(id, webhook_id)| DeliveryRow {
            id,
            tenant_id,
            event_id,
            webhook_id,
            at: now,
            lease: None,
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_deliveries::<B>(&mut *tx, chunk).await?;
    }
    if !rows.is_empty() {
        B::notify_work_on(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Some(
        ids.into_iter()
            .zip(webhook_ids)
            .map(|(id, webhook_id)| DeliveryInfo {
                id,
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                webhook_id: webhook_id.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: Some(now),
                last_status: None,
                last_error: None,
                created_at: now,
                updated_at: now,
                completed_at: None,
            })
            .collect(),
    ))
}
