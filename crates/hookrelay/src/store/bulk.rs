//! Multi-row INSERT statements that read the same on every backend, written once: each
//! backend's queue module invokes [`bulk_inserts!`] with its database type.

/// Defines `insert_events`, `insert_deliveries` and `insert_logs` on one connection type.
macro_rules! bulk_inserts {
    ($db:ty) => {
        pub(super) async fn insert_events(conn: &mut <$db as ::sqlx::Database>::Connection, events: &[&$crate::domain::event::NewEvent]) -> $crate::store::StoreResult<()> {
            let mut insert = ::sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO events (id, tenant_id, event_type, body, idempotency_key, created_at) ",
            );
            insert.push_values(events, |mut row, e| {
                row.push_bind(e.id.as_str())
                    .push_bind(e.tenant_id.as_str())
                    .push_bind(e.event_type)
                    .push_bind(e.body.as_str())
                    .push_bind(e.idempotency_key.as_deref())
                    .push_bind(e.created_at.millis());
            });
            insert
                .build()
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        pub(super) async fn insert_deliveries(
            conn: &mut <$db as ::sqlx::Database>::Connection,
            rows: &[$crate::store::batch::NewDelivery<'_>],
            plan: &$crate::store::LeasePlan,
        ) -> $crate::store::StoreResult<()> {
            let mut insert = ::sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO deliveries (id, tenant_id, event_id, webhook_id, state, attempts,
                    next_attempt_at, leased_until, leased_by, created_at, updated_at) ",
            );
            insert.push_values(rows, |mut row, d| {
                let at = d.event.created_at.millis();
                row.push_bind(d.id.as_str())
                    .push_bind(d.event.tenant_id.as_str())
                    .push_bind(d.event.id.as_str())
                    .push_bind(d.target.webhook_id.as_str())
                    .push_bind("pending")
                    .push_bind(0_i64)
                    .push_bind(at)
                    .push_bind(d.leased.then_some(plan.until.millis()))
                    .push_bind(d.leased.then_some(plan.node.as_str()))
                    .push_bind(at)
                    .push_bind(at);
            });
            insert
                .build()
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        pub(super) async fn insert_logs(conn: &mut <$db as ::sqlx::Database>::Connection, rows: &[$crate::store::batch::LogRow<'_>]) -> $crate::store::StoreResult<()> {
            let mut insert = ::sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO webhook_logs (id, tenant_id, webhook_id, delivery_id, event_id,
                    event_type, payload, request_headers, response_status, response_body,
                    response_body_truncated, response_time_ms, error_message, attempt_count,
                    is_success, is_test, created_at) ",
            );
            insert.push_values(rows, |mut b, row| {
                b.push_bind(row.id)
                    .push_bind(row.tenant_id)
                    .push_bind(row.webhook_id)
                    .push_bind(row.delivery_id)
                    .push_bind(row.event_id)
                    .push_bind(row.event_type)
                    .push_bind(row.payload)
                    .push_bind(row.request_headers)
                    .push_bind(row.response_status)
                    .push_bind(row.response_body)
                    .push_bind(row.response_body_truncated)
                    .push_bind(row.response_time_ms)
                    .push_bind(row.error_message)
                    .push_bind(row.attempt_count)
                    .push_bind(row.is_success)
                    .push_bind(row.is_test)
                    .push_bind(row.created_at.millis());
            });
            insert
                .build()
                .persistent(false)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
    };
}

pub(crate) use bulk_inserts;
