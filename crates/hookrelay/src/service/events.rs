//! Sending events, and reading one back with where its deliveries stand.

use std::collections::HashMap;

use super::{Caller, Service, ServiceError, ServiceResult};
use crate::delivery::Accepted;
use crate::domain::event::{EventInput, NewEvent};
use crate::domain::id::{EventId, TenantId};
use crate::domain::time::Timestamp;
use crate::store::EventDetail;

impl Service {
    /// Stores an event with one delivery per matching, active webhook, before answering.
    ///
    /// A tenant key may name its own tenant in the event (so one body suits both kinds of
    /// key); naming another is not found, whether it exists or not, as every other tenant's
    /// object is. The admin key must name an existing tenant.
    pub async fn send_event(&self, caller: &Caller, input: EventInput) -> ServiceResult<Accepted> {
        let tenant_id = self
            .tenant_of(caller, &input, &mut HashMap::new())
            .await?
            .ok_or(ServiceError::UnknownTenants(vec![0]))?;
        let event = NewEvent::new(tenant_id, &input, Timestamp::now());
        Ok(self.inner.engine.ingest(event).await?)
    }

    /// [`Service::send_event`] for many: all are checked before any is stored; each is then
    /// accepted as if sent alone (idempotency keys included), in the order given.
    pub async fn send_events(
        &self,
        caller: &Caller,
        inputs: Vec<EventInput>,
    ) -> ServiceResult<Vec<Accepted>> {
        let now = Timestamp::now();
        let mut known = HashMap::new();
        let mut events = Vec::with_capacity(inputs.len());
        let mut unknown = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            match self.tenant_of(caller, input, &mut known).await? {
                Some(tenant_id) => events.push(NewEvent::new(tenant_id, input, now)),
                None => unknown.push(i),
            }
        }
        if !unknown.is_empty() {
            return Err(ServiceError::UnknownTenants(unknown));
        }
        let answers = self.inner.engine.ingest_many(events).await;
        Ok(answers.into_iter().collect::<Result<_, _>>()?)
    }

    /// The tenant an event belongs to; `None` when the admin named one that does not exist
    /// (`known` remembers each tenant looked up, however many events name it).
    async fn tenant_of<'a>(
        &self,
        caller: &Caller,
        input: &'a EventInput,
        known: &mut HashMap<&'a TenantId, bool>,
    ) -> ServiceResult<Option<TenantId>> {
        let named = input.tenant_id.as_ref();
        match caller {
            Caller::Tenant(own) => match named {
                Some(named) if named != own => Err(ServiceError::NotFound("tenant")),
                _ => Ok(Some(own.clone())),
            },
            // `EventInput::parse` refused an admin's event without one.
            Caller::Admin => {
                let Some(named) = named else {
                    return Ok(None);
                };
                let exists = match known.get(named) {
                    Some(&exists) => exists,
                    None => {
                        let exists = !crate::domain::operational::is_system_tenant(named)
                            && self.inner.store.tenant(named).await?.is_some();
                        known.insert(named, exists);
                        exists
                    }
                };
                Ok(exists.then(|| named.clone()))
            }
        }
    }

    /// One of the tenant's events and each of its deliveries.
    pub async fn event(
        &self,
        tenant_id: &TenantId,
        event_id: &EventId,
    ) -> ServiceResult<EventDetail> {
        self.inner
            .store
            .event(tenant_id, event_id)
            .await?
            .ok_or(ServiceError::NotFound("event"))
    }
}
