//! Retention on SQLite: the SQL text (the code is shared, `store/retention.rs`), and giving
//! freed pages back to the file system.

use sqlx::{Row, SqlitePool};

use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;

mod sql {
    pub const PURGE_LOGS: &str = "DELETE FROM webhook_logs WHERE id IN (
        SELECT id FROM webhook_logs WHERE id < ?1 ORDER BY id LIMIT ?2)";
    pub const PURGE_EVENTS: &str = "DELETE FROM events WHERE id IN (
        SELECT e.id FROM events e
        WHERE e.id < ?1
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                          AND (d.state = 'pending' OR d.updated_at >= ?2))
        ORDER BY e.id LIMIT ?3)";
}

crate::store::retention::retention!(SqlitePool);

/// Moves at most `pages` free pages to the end of the file and truncates it (the database
/// is in `auto_vacuum = INCREMENTAL` mode, see migration 0003); answers the free pages left.
pub(super) async fn reclaim_space(writer: &SqlitePool, pages: u32) -> StoreResult<u64> {
    let mut conn = writer.acquire().await?;
    // The pragma returns a row per page freed: read them all, or it stops at the first.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA incremental_vacuum({pages})"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let left: i64 = sqlx::query("PRAGMA freelist_count")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(u64::try_from(left).unwrap_or(0))
}
