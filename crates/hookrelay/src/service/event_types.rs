//! The event-type registry: loading it, and the operator's changes to it. Every node keeps
//! one compiled snapshot and swaps in a new one whenever the registry changes, here or (on
//! PostgreSQL) on another node.

use std::sync::Arc;

use super::{Service, ServiceError, ServiceResult};
use crate::domain::catalog::CATALOG;
use crate::domain::registry::{
    EventTypePatch, EventTypeRecord, EventTypes, MAX_TYPES, NewEventType, RegisteredType,
};
use crate::domain::time::Timestamp;
use crate::store::TypeInsert;

impl Service {
    /// The registry as it stands: cheap (one `Arc`), taken once per request.
    pub fn event_types(&self) -> Arc<EventTypes> {
        let snapshot = self
            .inner
            .event_types
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&snapshot)
    }

    /// At start-up: seeds the built-in types a new database lacks, then reads the registry.
    pub async fn load_event_types(&self) -> ServiceResult<()> {
        let now = Timestamp::now();
        let builtin: Vec<EventTypeRecord> = CATALOG
            .iter()
            .map(|t| EventTypeRecord::builtin(t, now))
            .collect();
        self.inner.store.seed_event_types(&builtin).await?;
        self.reload_event_types().await
    }

    /// Reads the registry afresh and compiles its schemas.
    pub async fn reload_event_types(&self) -> ServiceResult<()> {
        let records = self.inner.store.event_types().await?;
        let snapshot = Arc::new(EventTypes::from_records(records));
        *self
            .inner
            .event_types
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
        Ok(())
    }

    pub fn event_type(&self, name: &str) -> ServiceResult<RegisteredType> {
        self.event_types()
            .find(name)
            .cloned()
            .ok_or(ServiceError::NotFound("event type"))
    }

    pub async fn create_event_type(&self, new: NewEventType) -> ServiceResult<RegisteredType> {
        let record = new.record(Timestamp::now());
        match self.inner.store.insert_event_type(&record).await? {
            TypeInsert::Created => {}
            TypeInsert::Exists => {
                return Err(ServiceError::Conflict(format!(
                    "an event type named {:?} exists; change it with PATCH",
                    new.name
                )));
            }
            TypeInsert::Full => {
                return Err(ServiceError::QuotaExceeded(format!(
                    "the registry holds its most, {MAX_TYPES} event types; deprecate instead of adding"
                )));
            }
        }
        self.reload_event_types().await?;
        self.event_type(&new.name)
    }

    pub async fn update_event_type(
        &self,
        name: &str,
        patch: EventTypePatch,
    ) -> ServiceResult<RegisteredType> {
        let current = self
            .inner
            .store
            .event_types()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or(ServiceError::NotFound("event type"))?;
        let updated = patch
            .apply(&current, Timestamp::now())
            .map_err(ServiceError::Invalid)?;
        if !self.inner.store.update_event_type(&updated).await? {
            return Err(ServiceError::NotFound("event type"));
        }
        self.reload_event_types().await?;
        self.event_type(name)
    }
}
