//! Recoveries, written once for every backend: starting one (one running per webhook, across
//! nodes), reading and cancelling them, and the paced steps that re-queue a webhook's failed
//! deliveries, oldest first, exactly once each.

use sqlx::Pool;

use super::backend::{Backend, Bind, get, get_id, query, query_built, sql, values_list};
use super::ingest::ROWS_PER_STATEMENT;
use super::rows::{before, opt_ts, ts};
use super::{
    NODE_DEAD_AFTER_MS, Page, RecoveryStart, RecoveryStep, StoreError, StoreResult, notices,
};
use crate::domain::crypto::Keyring;
use crate::domain::id::{self, RecoveryId, TenantId, WebhookId};
use crate::domain::operational;
use crate::domain::recovery::{self, Recovery, RecoveryState, Window};
use crate::domain::time::Timestamp;

fn recovery_from<B: Backend>(row: &B::Row) -> StoreResult<Recovery> {
    let state: String = get::<B, _>(row, "state")?;
    let state = RecoveryState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("recoveries.state = {state:?}")))?;
    let pace: i64 = get::<B, _>(row, "pace")?;
    Ok(Recovery {
        id: get_id::<B, _>(row, "id")?,
        tenant_id: get_id::<B, _>(row, "tenant_id")?,
        webhook_id: get_id::<B, _>(row, "webhook_id")?,
        window: Window {
            since: ts::<B>(row, "since")?,
            until: ts::<B>(row, "until")?,
        },
        pace: u32::try_from(pace).unwrap_or(1).max(1),
        state,
        total: get::<B, _>(row, "total")?,
        requeued: get::<B, _>(row, "requeued")?,
        created_at: ts::<B>(row, "created_at")?,
        updated_at: ts::<B>(row, "updated_at")?,
        completed_at: opt_ts::<B>(row, "completed_at")?,
    })
}

/// The id range of the deliveries made in a window (delivery ids embed their creation time).
fn id_range(window: &Window) -> (String, String) {
    (
        id::floor_at(id::DELIVERY, window.since),
        id::floor_at(id::DELIVERY, window.until),
    )
}

pub(crate) async fn start_recovery<B: Backend>(
    writer: &Pool<B>,
    r: &Recovery,
) -> StoreResult<RecoveryStart> {
    let (from, to) = id_range(&r.window);
    let mut tx = writer.begin().await?;
    let count = query(
        "SELECT COUNT(*) AS n FROM deliveries
         WHERE webhook_id = $1 AND state = 'failed' AND id >= $2 AND id < $3",
    );
    let total: i64 = get::<B, _>(
        &B::fetch_optional_on(&mut *tx, count.s(&r.webhook_id).s(&from).s(&to))
            .await?
            .ok_or(sqlx::Error::RowNotFound)?,
        "n",
    )?;
    let insert = query(
        "INSERT INTO recoveries (id, tenant_id, webhook_id, since, until, pace, state, total,
            requeued, next_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, 0, $8, $8, $8)",
    )
    .s(&r.id)
    .s(&r.tenant_id)
    .s(&r.webhook_id)
    .b(r.window.since.millis())
    .b(r.window.until.millis())
    .b(i64::from(r.pace))
    .b(total)
    .b(r.created_at.millis());
    match B::execute_on(&mut *tx, insert).await {
        Ok(_) => {}
        Err(e) => {
            let e = StoreError::from(e);
            if !matches!(e, StoreError::Conflict(_)) {
                return Err(e);
            }
            drop(tx);
            let q = query("SELECT id FROM recoveries WHERE webhook_id = $1 AND state = 'running'");
            return match B::fetch_optional(writer, q.s(&r.webhook_id)).await? {
                Some(row) => Ok(RecoveryStart::AlreadyRunning(get_id::<B, _>(&row, "id")?)),
                // It ended between the two statements: the caller may ask again.
                None => Err(e),
            };
        }
    }
    tx.commit().await?;
    Ok(RecoveryStart::Started(Recovery { total, ..r.clone() }))
}

pub(crate) async fn recovery<B: Backend>(
    pool: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    id: &RecoveryId,
) -> StoreResult<Option<Recovery>> {
    let q = query("SELECT * FROM recoveries WHERE id = $1 AND webhook_id = $2 AND tenant_id = $3");
    B::fetch_optional(pool, q.s(id).s(webhook_id).s(tenant_id))
        .await?
        .as_ref()
        .map(recovery_from::<B>)
        .transpose()
}

pub(crate) async fn recoveries<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    page: &Page,
) -> StoreResult<Vec<Recovery>> {
    let q = query(
        "SELECT * FROM recoveries WHERE webhook_id = $1 AND tenant_id = $2 AND id < $3
         ORDER BY id DESC LIMIT $4",
    );
    let q = q
        .s(webhook_id)
        .s(tenant_id)
        .s(before(page))
        .b(i64::from(page.limit));
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(recovery_from::<B>)
        .collect()
}

pub(crate) async fn cancel_recovery<B: Backend>(
    writer: &Pool<B>,
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    id: &RecoveryId,
    at: Timestamp,
) -> StoreResult<Option<Recovery>> {
    let q = query(
        "UPDATE recoveries SET state = 'cancelled', updated_at = $1, completed_at = $1,
            leased_by = NULL, leased_until = NULL
         WHERE id = $2 AND webhook_id = $3 AND tenant_id = $4 AND state = 'running'",
    );
    B::execute(writer, q.b(at.millis()).s(id).s(webhook_id).s(tenant_id)).await?;
    recovery(writer, tenant_id, webhook_id, id).await
}

pub(crate) async fn running_recoveries<B: Backend>(reader: &Pool<B>) -> StoreResult<i64> {
    let q = query("SELECT COUNT(*) AS n FROM recoveries WHERE state = 'running'");
    Ok(get::<B, _>(&B::fetch_one(reader, q).await?, "n")?)
}

pub(crate) async fn advance_recoveries<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    node: &str,
    now: Timestamp,
    horizon: Timestamp,
    lease_until: Timestamp,
) -> StoreResult<Vec<RecoveryStep>> {
    // A node alone on its database holds every lease there is; on a shared one, a lease is
    // free once it ran out or its node stopped sending heartbeats.
    let claim = query(sql::<B>(
        "UPDATE recoveries SET leased_by = $1, leased_until = $2 WHERE state = 'running'
         RETURNING *",
        "UPDATE recoveries SET leased_by = $1, leased_until = $2
         WHERE state = 'running'
           AND (leased_by IS NULL OR leased_by = $1 OR leased_until < $3
                OR leased_by NOT IN (SELECT id FROM nodes WHERE heartbeat_at > $4))
         RETURNING *",
    ));
    let mut claim = claim.s(node).b(lease_until.millis());
    if B::SHARED {
        claim = claim.b(now.millis()).b(now.millis() - NODE_DEAD_AFTER_MS);
    }
    let claimed = B::fetch_all(writer, claim).await?;
    let mut steps = Vec::with_capacity(claimed.len());
    for row in &claimed {
        let held = recovery_from::<B>(row)?;
        let next_at = ts::<B>(row, "next_at")?;
        let position: Option<String> = get::<B, _>(row, "position")?;
        let (due, next_free) =
            recovery::slots(next_at, now, horizon, held.pace, ROWS_PER_STATEMENT);
        if due.is_empty() {
            continue;
        }
        if let Some(step) =
            step::<B>(writer, keys, node, &held, position, &due, next_free, now).await?
        {
            steps.push(step);
        }
    }
    Ok(steps)
}

/// Re-queues the next failed deliveries of one recovery into the slots `due`, in one
/// transaction that also moves the recovery's position: each is re-queued exactly once,
/// whichever node does it. `None` when the recovery is no longer this node's to move.
#[allow(clippy::too_many_arguments)]
async fn step<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    node: &str,
    held: &Recovery,
    position: Option<String>,
    due: &[Timestamp],
    next_free: Timestamp,
    now: Timestamp,
) -> StoreResult<Option<RecoveryStep>> {
    let (from, to) = id_range(&held.window);
    let mut tx = writer.begin().await?;
    let q = query(
        "SELECT id FROM deliveries
         WHERE webhook_id = $1 AND state = 'failed' AND id >= $2 AND id > $3 AND id < $4
         ORDER BY id LIMIT $5",
    );
    let q = q
        .s(&held.webhook_id)
        .s(&from)
        .s(position.as_deref().unwrap_or(""))
        .s(&to)
        .b(due.len() as i64);
    let found: Vec<String> = B::fetch_all_on(&mut *tx, q)
        .await?
        .iter()
        .map(|row| get::<B, String>(row, "id"))
        .collect::<Result<_, _>>()?;
    if !found.is_empty() {
        let width = 2;
        let after = found.len() * width + 1;
        let sql = format!(
            "WITH u(id, due) AS (VALUES {})
             UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = u.due,
                 leased_until = NULL, leased_by = NULL, updated_at = ${after},
                 completed_at = NULL, counted = ${}
             FROM u WHERE deliveries.id = u.id AND deliveries.state = 'failed'",
            values_list::<B>(found.len(), width, 1),
            after + 1,
        );
        let mut q = query_built::<B>(sql);
        for (id, at) in found.iter().zip(due) {
            q = q.s(id).b(at.millis());
        }
        B::execute_on(&mut *tx, q.b(now.millis()).b(true)).await?;
    }
    // Fewer failed deliveries than slots: the window is exhausted.
    let done = found.len() < due.len();
    let next_at = due.get(found.len()).copied().unwrap_or(next_free);
    let state = if done {
        RecoveryState::Completed
    } else {
        RecoveryState::Running
    };
    let q = query(
        "UPDATE recoveries SET position = COALESCE($1, position), requeued = requeued + $2,
            next_at = $3, updated_at = $4, state = $5, completed_at = $6,
            total = CASE WHEN requeued + $2 > total THEN requeued + $2 ELSE total END
         WHERE id = $7 AND leased_by = $8 AND state = 'running'",
    );
    let q = q
        .os(found.last().map(String::as_str))
        .b(found.len() as i64)
        .b(next_at.millis())
        .b(now.millis())
        .s(state.as_str())
        .b(done.then_some(now.millis()))
        .s(&held.id)
        .s(node);
    if B::execute_on(&mut *tx, q).await? == 0 {
        // Cancelled, or taken over by another node: undo what this step did.
        return Ok(None);
    }
    if !found.is_empty() {
        B::notify_work_on(&mut *tx).await?;
    }
    let requeued = found.len() as u64;
    let total = held.total.max(held.requeued + requeued as i64);
    if done {
        // Told to the operator in the transaction that finishes it, like every notice.
        let details = serde_json::json!({
            "requeued": held.requeued + requeued as i64,
            "total": total,
            "since": held.window.since.to_rfc3339(),
            "until": held.window.until.to_rfc3339(),
        });
        let event = operational::recovery_completed(
            &held.tenant_id,
            &held.webhook_id,
            held.id.as_str(),
            details,
            now,
        );
        notices::emit::<B>(&mut tx, keys, vec![event]).await?;
    }
    tx.commit().await?;
    Ok(Some(RecoveryStep {
        recovery: Recovery {
            state,
            requeued: held.requeued + requeued as i64,
            total,
            updated_at: now,
            completed_at: done.then_some(now),
            ..held.clone()
        },
        requeued,
    }))
}
