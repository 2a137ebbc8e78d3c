//! Webhooks: create, read, change, delete, and sealing their secrets afresh, written once for
//! every backend.

use sqlx::Pool;

use super::backend::{Backend, Bind, Q, get, query, sql};
use super::rows::{
    SealedColumns, before, events_json, filter_json, reseal, schedule_json, seal_headers,
    webhook_from,
};
use super::{Page, StoreResult, WebhookFilter};
use crate::domain::crypto::Keyring;
use crate::domain::health::Health;
use crate::domain::id::{TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookChange};

pub(crate) async fn insert_webhook<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    w: &Webhook,
    max_per_tenant: u32,
) -> StoreResult<bool> {
    let mut tx = writer.begin().await?;
    if max_per_tenant > 0 && B::SHARED {
        // Creates for one tenant queue on its row, so the count below stays true. (SQLite's
        // single writer already serialises them.)
        let lock = query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE").s(&w.tenant_id);
        B::execute_on(&mut *tx, lock).await?;
    }
    let q = query(
        "INSERT INTO webhooks (id, tenant_id, name, description, url, events, secret,
            retry_count, timeout_seconds, headers, rate_limit_per_second, is_active,
            created_at, updated_at, disabled_reason, disabled_at, disable_after_ms,
            retry_schedule, filter)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16, $17, $18, $19,
                $20
         WHERE $15 = 0 OR (SELECT COUNT(*) FROM webhooks WHERE tenant_id = $2) < $15",
    )
    .s(&w.id)
    .s(&w.tenant_id)
    .s(&w.name)
    .os(w.description.as_deref())
    .s(&w.url)
    .b(events_json(w))
    .b(keys.seal(&w.secret, w.id.as_str()))
    .b(w.retry_count)
    .b(w.timeout_seconds)
    .b(seal_headers(keys, w))
    .b(w.rate_limit_per_second)
    .b(w.is_active())
    .b(w.created_at.millis())
    .b(w.updated_at.millis())
    .b(i64::from(max_per_tenant))
    .os(w.health.disabled.map(|(r, _)| r.as_str()))
    .b(w.health.disabled.map(|(_, at)| at.millis()))
    .b(w.health.disable_after.to_stored())
    .b(schedule_json(w))
    .b(filter_json(w));
    let done = B::execute_on(&mut *tx, q).await?;
    tx.commit().await?;
    Ok(done > 0)
}

pub(crate) async fn webhook<B: Backend>(
    reader: &Pool<B>,
    keys: &Keyring,
    tenant_id: &TenantId,
    id: &WebhookId,
) -> StoreResult<Option<Webhook>> {
    let q = query("SELECT * FROM webhooks WHERE id = $1 AND tenant_id = $2")
        .s(id)
        .s(tenant_id);
    B::fetch_optional(reader, q)
        .await?
        .as_ref()
        .map(|row| webhook_from::<B>(row, keys))
        .transpose()
}

pub(crate) async fn webhooks<B: Backend>(
    reader: &Pool<B>,
    keys: &Keyring,
    tenant_id: &TenantId,
    filter: &WebhookFilter,
    page: &Page,
) -> StoreResult<Vec<Webhook>> {
    let q = query(sql::<B>(
        "SELECT * FROM webhooks
         WHERE tenant_id = $1 AND id < $2 AND ($3 IS NULL OR is_active = $3)
         ORDER BY id DESC LIMIT $4",
        "SELECT * FROM webhooks
         WHERE tenant_id = $1 AND id < $2 AND ($3::BOOLEAN IS NULL OR is_active = $3)
         ORDER BY id DESC LIMIT $4",
    ))
    .s(tenant_id)
    .s(before(page))
    .b(filter.is_active)
    .b(i64::from(page.limit));
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(|row| webhook_from::<B>(row, keys))
        .collect()
}

pub(crate) async fn update_webhook<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    tenant_id: &TenantId,
    id: &WebhookId,
    change: WebhookChange,
    at: Timestamp,
) -> StoreResult<Option<Webhook>> {
    // A read-modify-write under the row lock (PostgreSQL) or on the single writer (SQLite);
    // the UPDATE names only writable columns, so counters moved by deliveries meanwhile are
    // never lost.
    let mut tx = writer.begin().await?;
    let q = query(sql::<B>(
        "SELECT * FROM webhooks WHERE id = $1 AND tenant_id = $2",
        "SELECT * FROM webhooks WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    ));
    let Some(row) = B::fetch_optional_on(&mut *tx, q.s(id).s(tenant_id)).await? else {
        return Ok(None);
    };
    let mut w = webhook_from::<B>(&row, keys)?;
    w.change(change, at);
    let q: Q<B> = query(
        "UPDATE webhooks SET name = $1, description = $2, url = $3, events = $4, secret = $5,
            previous_secret = $6, previous_secret_expires_at = $7,
            retry_count = $8, timeout_seconds = $9, headers = $10,
            rate_limit_per_second = $11, is_active = $12, updated_at = $13,
            disabled_reason = $15, disabled_at = $16, streak_started_at = $17,
            streak_failed_attempts = $18, streak_failed_deliveries = $19,
            failing_since = $20, disable_after_ms = $21,
            retry_schedule = $22, filter = $23
         WHERE id = $14",
    );
    let q = q
        .s(&w.name)
        .os(w.description.as_deref())
        .s(&w.url)
        .b(events_json(&w))
        .b(keys.seal(&w.secret, w.id.as_str()))
        .b(w.previous_secret
            .as_ref()
            .map(|(s, _)| keys.seal(s, w.id.as_str())))
        .b(w.previous_secret.as_ref().map(|(_, until)| until.millis()))
        .b(w.retry_count)
        .b(w.timeout_seconds)
        .b(seal_headers(keys, &w))
        .b(w.rate_limit_per_second)
        .b(w.is_active())
        .b(w.updated_at.millis())
        .s(&w.id);
    let q = bind_health::<B>(q, &w.health)
        .b(schedule_json(&w))
        .b(filter_json(&w));
    B::execute_on(&mut *tx, q).await?;
    B::webhook_changed_on(&mut *tx, w.id.as_str()).await?;
    tx.commit().await?;
    Ok(Some(w))
}

/// Binds the health columns after `is_active`, in the order `update_webhook` names them.
fn bind_health<B: Backend>(q: Q<B>, h: &Health) -> Q<B> {
    q.os(h.disabled.map(|(r, _)| r.as_str()))
        .b(h.disabled.map(|(_, at)| at.millis()))
        .b(h.streak.map(|s| s.started_at.millis()))
        .b(h.streak.map_or(0, |s| s.failed_attempts))
        .b(h.streak.map_or(0, |s| s.failed_deliveries))
        .b(h.failing_since.map(Timestamp::millis))
        .b(h.disable_after.to_stored())
}

pub(crate) async fn reencrypt_secrets<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
) -> StoreResult<u64> {
    let q = query("SELECT id, secret, previous_secret, headers FROM webhooks");
    let rows = B::fetch_all(writer, q).await?;
    let mut sealed = 0;
    for row in rows {
        let id: String = get::<B, _>(&row, "id")?;
        let stored = SealedColumns {
            secret: get::<B, _>(&row, "secret")?,
            previous_secret: get::<B, _>(&row, "previous_secret")?,
            headers: get::<B, _>(&row, "headers")?,
        };
        let Some(fresh) = reseal(keys, &id, &stored)? else {
            continue;
        };
        // Only if unchanged meanwhile: a concurrent update already sealed it afresh.
        let q = query(
            "UPDATE webhooks SET secret = $1, previous_secret = $2, headers = $3
             WHERE id = $4 AND secret = $5 AND previous_secret IS NOT DISTINCT FROM $6
               AND headers IS NOT DISTINCT FROM $7",
        )
        .b(fresh.secret)
        .b(fresh.previous_secret)
        .b(fresh.headers)
        .s(&id)
        .s(&stored.secret)
        .os(stored.previous_secret.as_deref())
        .os(stored.headers.as_deref());
        B::execute(writer, q).await?;
        sealed += 1;
    }
    Ok(sealed)
}

pub(crate) async fn delete_webhook<B: Backend>(
    writer: &Pool<B>,
    tenant_id: &TenantId,
    id: &WebhookId,
    at: Timestamp,
) -> StoreResult<bool> {
    // Deliveries first, then the webhook: the order the recorder locks them in, so the two
    // never deadlock.
    let mut tx = writer.begin().await?;
    let cancel = query(
        "UPDATE deliveries SET state = 'cancelled', updated_at = $1, completed_at = $1,
            leased_until = NULL, leased_by = NULL
         WHERE webhook_id = $2 AND tenant_id = $3 AND state = 'pending'",
    );
    B::execute_on(&mut *tx, cancel.b(at.millis()).s(id).s(tenant_id)).await?;
    let delete = query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2");
    if B::execute_on(&mut *tx, delete.s(id).s(tenant_id)).await? == 0 {
        return Ok(false); // dropping the transaction undoes the cancel
    }
    B::webhook_changed_on(&mut *tx, id.as_str()).await?;
    tx.commit().await?;
    Ok(true)
}
