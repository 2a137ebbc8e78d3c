//! Endpoint health where attempts are recorded, written once for every backend: inside the
//! recorder's transaction, each webhook of the batch is read under its row lock (PostgreSQL;
//! SQLite's single writer serialises anyway), the pure rule (`domain/health.rs`) applied to
//! its attempts in order, and the result written back. So the streak is exact however many
//! nodes record attempts to one webhook at once.

use std::collections::{BTreeMap, HashSet};

use super::StoreResult;
use super::backend::{Backend, Bind, get, get_id, query, sql};
use super::record::state_after;
use super::rows::health_from;
use crate::domain::delivery::{AttemptRecord, DeliveryState};
use crate::domain::health::{Health, HealthRules, Observed, Transition};
use crate::domain::id::{TenantId, WebhookId};
use crate::domain::time::Timestamp;

/// A webhook whose status changed with this batch.
#[derive(Debug, Clone)]
pub(crate) struct Changed {
    pub webhook_id: WebhookId,
    pub tenant_id: TenantId,
    pub name: String,
    pub url: String,
    pub transition: Transition,
    pub health: Health,
    pub at: Timestamp,
}

/// Applies the batch's attempts (those whose lease was still held: the others are another
/// node's to count) to their webhooks' health; answers the status changes.
pub(crate) async fn apply<B: Backend>(
    conn: &mut B::Connection,
    records: &[AttemptRecord],
    held: &HashSet<String>,
    rules: &HealthRules,
) -> StoreResult<Vec<Changed>> {
    // Sorted by webhook id: every recorder locks webhook rows in the same order, so two
    // never deadlock.
    let mut by_webhook: BTreeMap<&str, Vec<&AttemptRecord>> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| held.contains(r.job.delivery_id.as_str()))
    {
        by_webhook
            .entry(r.job.target.webhook_id.as_str())
            .or_default()
            .push(r);
    }
    if by_webhook.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = by_webhook.keys().copied().collect();
    // The columns `health_from` reads.
    let q = query(sql::<B>(
        "SELECT id, tenant_id, name, url, is_active, disabled_reason, disabled_at,
                streak_started_at, streak_failed_attempts, streak_failed_deliveries,
                failing_since, disable_after_ms
         FROM webhooks WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        "SELECT id, tenant_id, name, url, is_active, disabled_reason, disabled_at,
                streak_started_at, streak_failed_attempts, streak_failed_deliveries,
                failing_since, disable_after_ms
         FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    ));
    let rows = B::fetch_all_on(conn, q.ids(&ids)).await?;
    let mut changed = Vec::new();
    for row in &rows {
        let webhook_id: WebhookId = get_id::<B, _>(row, "id")?;
        let Some(attempts) = by_webhook.get(webhook_id.as_str()) else {
            continue;
        };
        let before = health_from::<B>(row)?;
        let mut health = before;
        let mut transitions = Vec::new();
        for r in attempts {
            let exhausted = state_after(r).0 == DeliveryState::Failed;
            let observed = Observed::of(&r.outcome, exhausted);
            if let Some(t) = health.observe(observed, r.recorded_at, rules) {
                transitions.push((t, r.recorded_at));
            }
        }
        if health == before {
            continue;
        }
        write::<B>(conn, &webhook_id, &health).await?;
        for (transition, at) in transitions {
            changed.push(Changed {
                webhook_id: webhook_id.clone(),
                tenant_id: get_id::<B, _>(row, "tenant_id")?,
                name: get::<B, _>(row, "name")?,
                url: get::<B, _>(row, "url")?,
                transition,
                health,
                at,
            });
        }
    }
    Ok(changed)
}

async fn write<B: Backend>(
    conn: &mut B::Connection,
    webhook_id: &WebhookId,
    h: &Health,
) -> StoreResult<()> {
    let q = query(
        "UPDATE webhooks SET is_active = $1, disabled_reason = $2, disabled_at = $3,
            streak_started_at = $4, streak_failed_attempts = $5, streak_failed_deliveries = $6,
            failing_since = $7
         WHERE id = $8",
    )
    .b(h.is_active)
    .os(h.disabled.map(|(r, _)| r.as_str()))
    .b(h.disabled.map(|(_, at)| at.millis()))
    .b(h.streak.map(|s| s.started_at.millis()))
    .b(h.streak.map_or(0, |s| s.failed_attempts))
    .b(h.streak.map_or(0, |s| s.failed_deliveries))
    .b(h.failing_since.map(Timestamp::millis))
    .s(webhook_id);
    B::execute_on(conn, q).await?;
    Ok(())
}
