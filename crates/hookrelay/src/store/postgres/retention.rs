//! Retention on PostgreSQL: the SQL text; the code is shared (`store/retention.rs`).
//! Autovacuum reclaims the space of deleted rows. SKIP LOCKED lets every node run retention
//! at once without waiting on each other's batches.

use sqlx::PgPool;

use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::store::StoreResult;

mod sql {
    pub const PURGE_LOGS: &str = "DELETE FROM webhook_logs WHERE id IN (
        SELECT id FROM webhook_logs WHERE id < $1 ORDER BY id LIMIT $2
        FOR UPDATE SKIP LOCKED)";
    pub const PURGE_EVENTS: &str = "DELETE FROM events WHERE id IN (
        SELECT e.id FROM events e
        WHERE e.id < $1
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id
                          AND (d.state = 'pending' OR d.updated_at >= $2))
        ORDER BY e.id LIMIT $3
        FOR UPDATE SKIP LOCKED)";
}

crate::store::retention::retention!(PgPool);
