//! The event-type registry, written once for every backend. Every write tells the other
//! nodes (PostgreSQL), in its transaction, that the registry changed.

use sqlx::Pool;

use super::backend::{Backend, Bind, get, query};
use super::rows::{opt_ts, ts};
use super::{StoreResult, TypeInsert};
use crate::domain::registry::{EventTypeRecord, MAX_TYPES};

fn record_from<B: Backend>(row: &B::Row) -> StoreResult<EventTypeRecord> {
    Ok(EventTypeRecord {
        name: get::<B, _>(row, "name")?,
        description: get::<B, _>(row, "description")?,
        schema: get::<B, _>(row, "schema")?,
        sample: get::<B, _>(row, "sample")?,
        deprecated_at: opt_ts::<B>(row, "deprecated_at")?,
        created_at: ts::<B>(row, "created_at")?,
        updated_at: ts::<B>(row, "updated_at")?,
    })
}

pub(crate) async fn event_types<B: Backend>(reader: &Pool<B>) -> StoreResult<Vec<EventTypeRecord>> {
    let q = query("SELECT * FROM event_types ORDER BY created_at, name");
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(record_from::<B>)
        .collect()
}

/// Inserts the types not there yet, leaving the others (and the operator's changes to them)
/// as they are.
pub(crate) async fn seed_event_types<B: Backend>(
    writer: &Pool<B>,
    records: &[EventTypeRecord],
) -> StoreResult<()> {
    let mut tx = writer.begin().await?;
    let mut added = 0;
    for record in records {
        let q = query(
            "INSERT INTO event_types
               (name, description, schema, sample, deprecated_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        );
        added += B::execute_on(&mut *tx, bind_record(q, record)).await?;
    }
    if added > 0 {
        B::event_types_changed_on(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn bind_record<B: Backend>(
    q: super::backend::Q<B>,
    record: &EventTypeRecord,
) -> super::backend::Q<B> {
    q.s(&record.name)
        .s(&record.description)
        .os(record.schema.as_deref())
        .s(&record.sample)
        .b(record.deprecated_at.map(|t| t.millis()))
        .b(record.created_at.millis())
        .b(record.updated_at.millis())
}

/// Adds a type, unless one of that name exists or the registry is full.
pub(crate) async fn insert_event_type<B: Backend>(
    writer: &Pool<B>,
    record: &EventTypeRecord,
) -> StoreResult<TypeInsert> {
    let mut tx = writer.begin().await?;
    let q = query("SELECT name FROM event_types WHERE name = $1").s(&record.name);
    if B::fetch_optional_on(&mut *tx, q).await?.is_some() {
        return Ok(TypeInsert::Exists);
    }
    let row =
        B::fetch_optional_on(&mut *tx, query("SELECT COUNT(*) AS n FROM event_types")).await?;
    let count: i64 = match row {
        Some(row) => get::<B, _>(&row, "n")?,
        None => 0,
    };
    if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_TYPES {
        return Ok(TypeInsert::Full);
    }
    let q = query(
        "INSERT INTO event_types
           (name, description, schema, sample, deprecated_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
    );
    if B::execute_on(&mut *tx, bind_record(q, record)).await? == 0 {
        return Ok(TypeInsert::Exists);
    }
    B::event_types_changed_on(&mut *tx).await?;
    tx.commit().await?;
    Ok(TypeInsert::Created)
}

/// Writes a type's new state; false when there is no such type.
pub(crate) async fn update_event_type<B: Backend>(
    writer: &Pool<B>,
    record: &EventTypeRecord,
) -> StoreResult<bool> {
    let mut tx = writer.begin().await?;
    let q = query(
        "UPDATE event_types SET description = $2, schema = $3, sample = $4,
           deprecated_at = $5, updated_at = $6
         WHERE name = $1",
    )
    .s(&record.name)
    .s(&record.description)
    .os(record.schema.as_deref())
    .s(&record.sample)
    .b(record.deprecated_at.map(|t| t.millis()))
    .b(record.updated_at.millis());
    let done = B::execute_on(&mut *tx, q).await?;
    if done > 0 {
        B::event_types_changed_on(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(done > 0)
}
