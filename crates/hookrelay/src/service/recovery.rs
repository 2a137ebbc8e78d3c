//! After things went wrong: a webhook's deliveries listed and read, one failed delivery
//! retried, a stored event replayed, and recoveries that re-queue a window of failures.

use super::{Service, ServiceError, ServiceResult};
use crate::domain::id::{DeliveryId, EventId, RecoveryId, TenantId, WebhookId};
use crate::domain::input::FieldError;
use crate::domain::recovery::{DeliveryStatus, Recovery, RecoveryState, Window};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, subscribes};
use crate::store::{
    DeliveryFilter, DeliveryInfo, LogEntry, Page, RecoveryStart, Requeued, WebhookFilter,
};

/// Webhooks one replay may name.
pub const REPLAY_WEBHOOKS_MAX: usize = 100;

/// A delivery and where it stands as its tenant sees it.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: DeliveryInfo,
    pub status: DeliveryStatus,
}

/// Which of a webhook's deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Service {
    /// A page of the webhook's deliveries, newest first.
    pub async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        query: &DeliveryQuery,
        page: &Page,
    ) -> ServiceResult<Vec<DeliveryView>> {
        let webhook = self.webhook(tenant_id, webhook_id).await?;
        let state = match query.status {
            // `held` and `pending` are one stored state, told apart by the webhook.
            Some(status) => match status.stored(webhook.is_active()) {
                Some(state) => Some(state),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let filter = DeliveryFilter {
            state,
            since: query.since,
            until: query.until,
        };
        let rows = self
            .inner
            .store
            .deliveries(tenant_id, webhook_id, &filter, page)
            .await?;
        Ok(rows.into_iter().map(|d| view(d, &webhook)).collect())
    }

    /// One delivery with every attempt made for it, oldest first.
    pub async fn delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        delivery_id: &DeliveryId,
    ) -> ServiceResult<(DeliveryView, Vec<LogEntry>)> {
        let webhook = self.webhook(tenant_id, webhook_id).await?;
        let (delivery, attempts) = self
            .inner
            .store
            .delivery(tenant_id, webhook_id, delivery_id)
            .await?
            .ok_or(ServiceError::NotFound("delivery"))?;
        Ok((view(delivery, &webhook), attempts))
    }

    /// Queues a failed delivery again, due now, with a new chain of attempts. Its earlier
    /// failure stays counted; a success now moves it from failed to succeeded.
    pub async fn retry_delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        delivery_id: &DeliveryId,
    ) -> ServiceResult<DeliveryView> {
        let webhook = self.webhook(tenant_id, webhook_id).await?;
        let store = &self.inner.store;
        match store
            .retry_delivery(tenant_id, webhook_id, delivery_id, Timestamp::now())
            .await?
        {
            Requeued::Queued(delivery) => {
                self.inner.engine.work_queued();
                Ok(view(delivery, &webhook))
            }
            Requeued::NotFailed(state) => Err(ServiceError::Conflict(format!(
                "the delivery is {}: only failed deliveries are retried",
                crate::domain::recovery::DeliveryStatus::of(state, webhook.is_active()).as_str()
            ))),
            Requeued::NotFound => Err(ServiceError::NotFound("delivery")),
        }
    }

    /// Sends a stored event again: to `webhook_ids` (each the tenant's and subscribed to the
    /// event's type), or to every enabled webhook of the tenant subscribed to it now. The
    /// replay keeps the event's id, so receivers that dedupe on `webhook-id` see it once.
    pub async fn replay(
        &self,
        tenant_id: &TenantId,
        event_id: &EventId,
        webhook_ids: Option<Vec<WebhookId>>,
    ) -> ServiceResult<Vec<DeliveryView>> {
        let event = self.event(tenant_id, event_id).await?;
        // Stored as valid JSON at ingest; an unreadable one passes no filter.
        let envelope: serde_json::Value =
            serde_json::from_str(&event.body).unwrap_or(serde_json::Value::Null);
        let targets = match webhook_ids {
            Some(ids) => {
                let mut errors = Vec::new();
                let mut targets: Vec<Webhook> = Vec::with_capacity(ids.len());
                for (i, id) in ids.into_iter().enumerate() {
                    let field = format!("webhook_ids[{i}]");
                    match self.inner.store.webhook(tenant_id, &id).await? {
                        None => errors.push(FieldError::new(field, "no such webhook")),
                        Some(w) if !subscribes(&w.events, &event.event_type) => {
                            errors.push(FieldError::new(
                                field,
                                format!("does not subscribe to {}", event.event_type),
                            ));
                        }
                        Some(w) if !w.filter_accepts(&envelope) => {
                            errors.push(FieldError::new(field, "its filter refuses this event"));
                        }
                        Some(_) if targets.iter().any(|t| t.id == id) => {
                            errors.push(FieldError::new(field, "is named twice"));
                        }
                        Some(w) => targets.push(w),
                    }
                }
                if !errors.is_empty() {
                    return Err(ServiceError::Invalid(errors));
                }
                targets
            }
            None => self
                .subscribers(tenant_id, &event.event_type)
                .await?
                .into_iter()
                .filter(|w| w.filter_accepts(&envelope))
                .collect(),
        };
        let ids: Vec<WebhookId> = targets.iter().map(|w| w.id.clone()).collect();
        let made = self
            .inner
            .store
            .replay(tenant_id, event_id, &ids, Timestamp::now())
            .await?
            .ok_or(ServiceError::NotFound("event"))?;
        if !made.is_empty() {
            self.inner.engine.work_queued();
        }
        Ok(made
            .into_iter()
            .filter_map(|d| {
                let webhook = targets.iter().find(|w| w.id == d.webhook_id)?;
                Some(view(d, webhook))
            })
            .collect())
    }

    /// Starts re-queueing the webhook's failed deliveries made in `[since, until)`, oldest
    /// first, at the webhook's rate limit or the server's recovery pace.
    pub async fn recover(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        since: Timestamp,
        until: Option<Timestamp>,
    ) -> ServiceResult<Recovery> {
        let webhook = self.webhook(tenant_id, webhook_id).await?;
        let now = Timestamp::now();
        let retention = self.inner.recovery.retention;
        let words = retention.map_or_else(
            || "off".to_owned(),
            |d| humantime::format_duration(d).to_string(),
        );
        let retention_ms = retention.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let window = Window::new(since, until, now, retention_ms, &words)
            .map_err(|(field, why)| ServiceError::field(field, why))?;
        let pace = webhook
            .rate_limit_per_second
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0)
            .unwrap_or(self.inner.recovery.pace);
        let recovery = Recovery::start(tenant_id, webhook_id, window, pace, now);
        match self.inner.store.start_recovery(&recovery).await? {
            RecoveryStart::Started(recovery) => {
                self.inner.engine.recovery_started();
                Ok(recovery)
            }
            RecoveryStart::AlreadyRunning(running) => Err(ServiceError::Conflict(format!(
                "recovery {running} is already running for this webhook: wait for it, or cancel it"
            ))),
        }
    }

    pub async fn recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        recovery_id: &RecoveryId,
    ) -> ServiceResult<Recovery> {
        self.inner
            .store
            .recovery(tenant_id, webhook_id, recovery_id)
            .await?
            .ok_or(ServiceError::NotFound("recovery"))
    }

    /// A page of the webhook's recoveries, newest first.
    pub async fn recoveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        page: &Page,
    ) -> ServiceResult<Vec<Recovery>> {
        self.webhook(tenant_id, webhook_id).await?;
        Ok(self
            .inner
            .store
            .recoveries(tenant_id, webhook_id, page)
            .await?)
    }

    /// Stops a running recovery; what it already re-queued stays queued.
    pub async fn cancel_recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        recovery_id: &RecoveryId,
    ) -> ServiceResult<Recovery> {
        let recovery = self
            .inner
            .store
            .cancel_recovery(tenant_id, webhook_id, recovery_id, Timestamp::now())
            .await?
            .ok_or(ServiceError::NotFound("recovery"))?;
        if recovery.state == RecoveryState::Completed {
            return Err(ServiceError::Conflict(
                "the recovery has already completed".to_owned(),
            ));
        }
        Ok(recovery)
    }

    /// The tenant's webhooks that a new event of `event_type` would reach now: enabled ones,
    /// and those disabled by their health (their deliveries are held, as at fan-out).
    async fn subscribers(
        &self,
        tenant_id: &TenantId,
        event_type: &str,
    ) -> ServiceResult<Vec<Webhook>> {
        let filter = WebhookFilter { is_active: None };
        let mut page = Page {
            limit: 200,
            before: None,
        };
        let mut out = Vec::new();
        loop {
            let batch = self.inner.store.webhooks(tenant_id, &filter, &page).await?;
            let full = batch.len() == page.limit as usize;
            page.before = batch.last().map(|w| w.id.as_str().to_owned());
            out.extend(batch.into_iter().filter(|w| {
                w.subscribes_to(event_type)
                    && (w.is_active()
                        || w.health
                            .disabled_reason()
                            .is_some_and(|r| r.holds_new_events()))
            }));
            if !full {
                return Ok(out);
            }
        }
    }
}

fn view(delivery: DeliveryInfo, webhook: &Webhook) -> DeliveryView {
    let status = DeliveryStatus::of(delivery.state, webhook.is_active());
    DeliveryView { delivery, status }
}
