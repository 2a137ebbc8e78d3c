//! Operational events where state changes, written once for every backend: the events and
//! their deliveries to operational webhooks (the system tenant's, see
//! `domain/operational.rs`) are inserted on the caller's connection, inside the transaction
//! that records the change, so the operator's notice is durable exactly when the change is.
//! The poller claims and sends them like any other delivery.

use super::backend::{Backend, Bind, get, query, sql};
use super::health::Changed;
use super::ingest::ingest_on;
use super::record::state_after;
use super::rows::events_json_list;
use super::{Ingested, LeasePlan, StoreResult};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, DeliveryState};
use crate::domain::event::NewEvent;
use crate::domain::operational::{self, ExhaustedNotice, WebhookNotice, is_system_tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::subscribes;

/// The operational events a batch of attempts causes: its webhooks' transitions, and its
/// deliveries that ran out of retries (those whose lease was still held). Nothing about the
/// system tenant's own webhooks, so a failing operational webhook cannot feed itself.
pub(crate) fn of_batch(
    changed: &[Changed],
    records: &[AttemptRecord],
    held: &std::collections::HashSet<String>,
    now: Timestamp,
) -> Vec<NewEvent> {
    let mut events = Vec::new();
    for c in changed.iter().filter(|c| !is_system_tenant(&c.tenant_id)) {
        let notice = WebhookNotice {
            tenant_id: &c.tenant_id,
            webhook_id: &c.webhook_id,
            name: &c.name,
            url: &c.url,
            health: &c.health,
        };
        events.push(operational::webhook_changed(&notice, c.transition, c.at));
    }
    for r in records.iter().filter(|r| {
        !is_system_tenant(&r.job.tenant_id)
            && held.contains(r.job.delivery_id.as_str())
            && state_after(r).0 == DeliveryState::Failed
    }) {
        let notice = ExhaustedNotice {
            tenant_id: &r.job.tenant_id,
            webhook_id: &r.job.target.webhook_id,
            delivery_id: r.job.delivery_id.as_str(),
            event_id: r.job.event_id.as_str(),
            event_type: &r.job.event_type,
            attempts: r.job.attempt,
            last_status: r.outcome.response_status,
            last_error: r.outcome.error.as_deref(),
        };
        events.push(operational::delivery_exhausted(&notice, now));
    }
    events
}

/// Stores the operational `events` that some operational webhook subscribes to, with their
/// deliveries (unleased: the poller claims them), on `conn` inside the caller's transaction.
/// Events nobody subscribes to are not stored. Answers the deliveries made.
pub(crate) async fn emit<B: Backend>(
    conn: &mut B::Connection,
    keys: &Keyring,
    events: Vec<NewEvent>,
) -> StoreResult<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let q = query(sql::<B>(
        "SELECT events FROM webhooks WHERE tenant_id = $1 AND is_active = 1",
        "SELECT events FROM webhooks WHERE tenant_id = $1 AND is_active",
    ));
    let rows = B::fetch_all_on(conn, q.s(operational::SYSTEM_TENANT)).await?;
    let mut lists = Vec::with_capacity(rows.len());
    for row in &rows {
        lists.push(events_json_list(get::<B, _>(row, "events")?)?);
    }
    let wanted: Vec<NewEvent> = events
        .into_iter()
        .filter(|e| lists.iter().any(|l| subscribes(l, e.event_type)))
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let plan = LeasePlan {
        node: String::new(),
        until: Timestamp(0),
        lease: false,
        skip_webhooks: Vec::new(),
    };
    let results = ingest_on::<B>(conn, keys, &wanted, &plan).await?;
    let made = results
        .iter()
        .map(|r| match r {
            Ingested::Created { deliveries, .. } => *deliveries,
            Ingested::Existing { .. } => 0,
        })
        .sum();
    if made > 0 {
        B::notify_work_on(conn).await?;
    }
    Ok(made)
}
