//! What happened to a webhook's deliveries: attempt logs, statistics, and the test send.

use crate::domain::id::{AttemptId, TenantId, WebhookId};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::value::RawValue;

use super::{Service, ServiceError, ServiceResult};
use crate::domain::delivery::AttemptOutcome;
use crate::domain::registry::{EventTypes, RegisteredType};
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;
use crate::store::{LogEntry, LogFilter, Page, WebhookStats};

/// What a test send did.
pub struct TestSend {
    pub event_type: &'static str,
    pub log_id: AttemptId,
    pub outcome: AttemptOutcome,
    /// Whether the webhook's filter would let this event through; `None`: it has none.
    pub filter_matched: Option<bool>,
}

impl Service {
    /// A page of a webhook's attempts, newest first.
    pub async fn logs(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        filter: &LogFilter,
        page: &Page,
    ) -> ServiceResult<Vec<LogEntry>> {
        let hook = self.webhook(tenant_id, webhook_id).await?;
        Ok(self
            .inner
            .store
            .logs(tenant_id, &hook.id, filter, page)
            .await?)
    }

    /// One attempt of a webhook, in full.
    pub async fn log(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        log_id: &AttemptId,
    ) -> ServiceResult<LogEntry> {
        let hook = self.webhook(tenant_id, webhook_id).await?;
        self.inner
            .store
            .log(tenant_id, &hook.id, log_id)
            .await?
            .ok_or(ServiceError::NotFound("log"))
    }

    /// A webhook's counts and response times, from `since` on if given.
    pub async fn stats(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        since: Option<Timestamp>,
    ) -> ServiceResult<(Webhook, WebhookStats)> {
        let hook = self.webhook(tenant_id, webhook_id).await?;
        let stats = self
            .inner
            .store
            .stats(tenant_id, &hook.id, since)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))?;
        Ok((hook, stats))
    }

    /// One synchronous signed attempt, logged as a test: of `event_type` (else the first
    /// registered type the webhook subscribes to) with `data` (else the type's sample).
    pub async fn test_send(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        event_type: Option<&str>,
        data: Option<Box<RawValue>>,
    ) -> ServiceResult<TestSend> {
        let hook = self.webhook(tenant_id, webhook_id).await?;
        self.inner.test_sends.check(&hook.id)?;
        let types = self.event_types();
        let event_type = match event_type {
            Some(name) => types.find(name),
            None => default_test_type(&types, &hook),
        }
        .ok_or_else(|| ServiceError::field("event_type", NOT_A_TYPE))?;
        let data = match data {
            Some(data) => data,
            // A sample is a JSON object: the registry's rules and the catalogue's tests.
            None => RawValue::from_string(event_type.sample.to_string())
                .unwrap_or_else(|_| crate::domain::event::empty_object()),
        };
        let (log_id, outcome, filter_matched) = self
            .inner
            .engine
            .test_send(&hook, event_type.name, &data)
            .await?;
        Ok(TestSend {
            event_type: event_type.name,
            log_id,
            outcome,
            filter_matched,
        })
    }
}

const NOT_A_TYPE: crate::domain::catalog::NotAnEventType = crate::domain::catalog::NotAnEventType;

/// The first registered type the webhook subscribes to, else the registry's first.
fn default_test_type<'a>(types: &'a EventTypes, hook: &Webhook) -> Option<&'a RegisteredType> {
    types
        .iter()
        .find(|t| hook.subscribes_to(t.name))
        .or_else(|| types.iter().next())
}

/// Test sends per webhook per minute, counted in this node's memory (GCRA, by `governor`).
/// A test send is a synchronous request to the tenant's receiver: without a limit the API
/// would be a way to make hookrelay hammer any URL a tenant registers.
pub(super) struct TestSendLimit {
    limiter: Option<DefaultKeyedRateLimiter<WebhookId>>,
    clock: DefaultClock,
}

impl TestSendLimit {
    /// `per_minute` for each webhook; 0: no limit.
    pub fn new(per_minute: u32) -> Self {
        TestSendLimit {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            clock: DefaultClock::default(),
        }
    }

    /// One test send to `webhook_id`.
    pub fn check(&self, webhook_id: &WebhookId) -> ServiceResult<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(webhook_id)
            .map_err(|not_until| ServiceError::RateLimited {
                scope: "test sends to this webhook",
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Forgets webhooks idle long enough that their allowance is whole again.
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn test_sends_allow_five_a_minute_by_default() {
        let default = crate::config::RateLimitConfig::default().test_sends_per_minute;
        let l = TestSendLimit::new(default);
        let (one, two) = (WebhookId::new(), WebhookId::new());
        for _ in 0..5 {
            assert!(l.check(&one).is_ok());
        }
        match l.check(&one) {
            Err(ServiceError::RateLimited { retry_after, .. }) => {
                assert!(retry_after > Duration::from_secs(5), "{retry_after:?}")
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // Another webhook has its own allowance.
        assert!(l.check(&two).is_ok());
    }

    #[test]
    fn zero_switches_the_limit_off() {
        let l = TestSendLimit::new(0);
        let webhook = WebhookId::new();
        for _ in 0..1000 {
            assert!(l.check(&webhook).is_ok());
        }
    }
}
