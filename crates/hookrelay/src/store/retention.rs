//! Deleting what is older than the retention age, in small batches, written once: each
//! backend's retention module defines its SQL text in a module `sql` and invokes
//! [`retention!`] with its pool type. Rows are found by primary key: an id embeds the time
//! it was made (see [`crate::domain::id::floor_at`]), so no index on the time is needed.

macro_rules! retention {
    ($pool:ty) => {
        pub(super) async fn purge_logs(
            pool: &$pool,
            before: Timestamp,
            limit: u32,
        ) -> StoreResult<u64> {
            let done = sqlx::query(sql::PURGE_LOGS)
                .bind(id::floor_at(id::ATTEMPT, before))
                .bind(i64::from(limit))
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }

        pub(super) async fn purge_events(
            pool: &$pool,
            before: Timestamp,
            limit: u32,
        ) -> StoreResult<u64> {
            // Deliveries go with their event (ON DELETE CASCADE).
            let done = sqlx::query(sql::PURGE_EVENTS)
                .bind(id::floor_at(id::EVENT, before))
                .bind(before.millis())
                .bind(i64::from(limit))
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        }
    };
}

pub(crate) use retention;
