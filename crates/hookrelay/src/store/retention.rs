//! Deleting what is older than the retention age, in small batches, written once for every
//! backend. Rows are found by primary key: an id embeds the time it was made (see
//! [`crate::domain::id::floor_at`]), so no index on the time is needed. On PostgreSQL, SKIP
//! LOCKED lets every node run retention at once without waiting on each other's batches, and
//! autovacuum reclaims the space; SQLite gives pages back in `Backend::reclaim_space`.

use sqlx::Pool;

use super::StoreResult;
use super::backend::{Backend, Bind, query, sql};
use crate::domain::id;
use crate::domain::time::Timestamp;

pub(crate) async fn purge_logs<B: Backend>(
    writer: &Pool<B>,
    before: Timestamp,
    limit: u32,
) -> StoreResult<u64> {
    let q = query(sql::<B>(
        "DELETE FROM webhook_logs WHERE id IN (
            SELECT id FROM webhook_logs WHERE id < $1 ORDER BY id LIMIT $2)",
        "DELETE FROM webhook_logs WHERE id IN (
            SELECT id FROM webhook_logs WHERE id < $1 ORDER BY id LIMIT $2
            FOR UPDATE SKIP LOCKED)",
    ));
    let q = q.b(id::floor_at(id::ATTEMPT, before)).b(i64::from(limit));
    Ok(B::execute(writer, q).await?)
}

pub(crate) async fn purge_events<B: Backend>(
    writer: &Pool<B>,
    before: Timestamp,
    limit: u32,
) -> StoreResult<u64> {
    // Deliveries go with their event (ON DELETE CASCADE).
    let q = query(sql::<B>(
        "DELETE FROM events WHERE id IN (
            SELECT e.id FROM events e
            WHERE e.id < $1
              AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                              AND (d.state = 'pending' OR d.updated_at >= $2))
            ORDER BY e.id LIMIT $3)",
        "DELETE FROM events WHERE id IN (
            SELECT e.id FROM events e
            WHERE e.id < $1
              AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                              AND (d.state = 'pending' OR d.updated_at >= $2))
            ORDER BY e.id LIMIT $3
            FOR UPDATE SKIP LOCKED)",
    ));
    let q = q
        .b(id::floor_at(id::EVENT, before))
        .b(before.millis())
        .b(i64::from(limit));
    Ok(B::execute(writer, q).await?)
}
