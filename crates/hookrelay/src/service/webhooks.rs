//! A tenant's webhooks: every write tells the engine, so queued work never outlives the
//! settings it was planned with.

use super::{Service, ServiceError, ServiceResult};
use crate::domain::egress::Blocked;
use crate::domain::id::{TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{NewWebhook, Rotation, Webhook, WebhookChange, WebhookPatch};
use crate::egress::{self, GuardError};
use crate::store::{Page, WebhookFilter};

impl Service {
    /// A new webhook for `tenant_id`, if its URL may be reached and the tenant's quota allows.
    pub async fn create_webhook(
        &self,
        tenant_id: &TenantId,
        new: NewWebhook,
    ) -> ServiceResult<Webhook> {
        self.check_target(&new.url).await?;
        let webhook = Webhook::create(tenant_id, new, Timestamp::now());
        let max = self.inner.max_webhooks_per_tenant;
        if !self.inner.store.insert_webhook(&webhook, max).await? {
            return Err(ServiceError::QuotaExceeded(format!(
                "this tenant already has {max} webhooks, the most allowed; delete one first"
            )));
        }
        Ok(webhook)
    }

    /// A page of the tenant's webhooks, newest first.
    pub async fn webhooks(
        &self,
        tenant_id: &TenantId,
        filter: &WebhookFilter,
        page: &Page,
    ) -> ServiceResult<Vec<Webhook>> {
        Ok(self.inner.store.webhooks(tenant_id, filter, page).await?)
    }

    /// The tenant's webhook; not found is the same for a missing or another tenant's.
    pub async fn webhook(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
    ) -> ServiceResult<Webhook> {
        self.inner
            .store
            .webhook(tenant_id, webhook_id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))
    }

    /// Changes any subset of a webhook's writable fields.
    pub async fn update_webhook(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        patch: WebhookPatch,
    ) -> ServiceResult<Webhook> {
        if let Some(url) = &patch.url {
            self.check_target(url).await?;
        }
        self.change(tenant_id, webhook_id, WebhookChange::Patch(Box::new(patch)))
            .await
    }

    /// Switches a webhook on again: held deliveries resume (oldest due first) and the failure
    /// streak is cleared. Enabling an active webhook changes nothing.
    pub async fn enable_webhook(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
    ) -> ServiceResult<Webhook> {
        let patch = WebhookPatch {
            is_active: Some(true),
            ..WebhookPatch::default()
        };
        self.change(tenant_id, webhook_id, WebhookChange::Patch(Box::new(patch)))
            .await
    }

    /// Switches a webhook off (reason `manual`): pending deliveries are held, new events are
    /// not delivered to it.
    pub async fn disable_webhook(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
    ) -> ServiceResult<Webhook> {
        let patch = WebhookPatch {
            is_active: Some(false),
            ..WebhookPatch::default()
        };
        self.change(tenant_id, webhook_id, WebhookChange::Patch(Box::new(patch)))
            .await
    }

    /// A new signing secret now; the old one keeps signing for the rotation's grace period.
    pub async fn rotate_secret(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        rotation: Rotation,
    ) -> ServiceResult<Webhook> {
        let change = WebhookChange::RotateSecret {
            secret: rotation.secret,
            grace: rotation.grace,
        };
        self.change(tenant_id, webhook_id, change).await
    }

    /// Deletes a webhook; its pending deliveries are cancelled.
    pub async fn delete_webhook(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
    ) -> ServiceResult<()> {
        let deleted = self
            .inner
            .store
            .delete_webhook(tenant_id, webhook_id, Timestamp::now())
            .await?;
        if !deleted {
            return Err(ServiceError::NotFound("webhook"));
        }
        self.inner.engine.webhook_changed(webhook_id).await;
        Ok(())
    }

    async fn change(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        change: WebhookChange,
    ) -> ServiceResult<Webhook> {
        let webhook = self
            .inner
            .store
            .update_webhook(tenant_id, webhook_id, change, Timestamp::now())
            .await?
            .ok_or(ServiceError::NotFound("webhook"))?;
        self.inner.engine.webhook_changed(&webhook.id).await;
        Ok(webhook)
    }

    /// Refuses a URL whose host is, or resolves to, an address webhooks may not reach. A name
    /// that does not resolve (yet) is accepted: the check at every connection fails closed.
    async fn check_target(&self, url: &str) -> ServiceResult<()> {
        let Ok(parsed) = url::Url::parse(url) else {
            return Err(ServiceError::field("url", "is not a valid absolute URL"));
        };
        let targets = &self.inner.targets;
        let refuse = |blocked: Blocked| ServiceError::field("url", blocked.to_string());
        egress::check_literal(targets, &parsed).map_err(refuse)?;
        if let Some(url::Host::Domain(name)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(0);
            let resolver = self.inner.engine.resolver();
            if let Err(GuardError::Blocked(blocked)) =
                egress::resolve(targets, resolver, name, port).await
            {
                return Err(refuse(blocked));
            }
        }
        Ok(())
    }
}
