//! The one store implementation: [`SqlStore`] over any [`Backend`]. Each operation is
//! written once, in the module of its group (`accounts`, `webhooks`, `ingest`, `record`,
//! `queue`, `retention`, `reads`); this file only routes each call to the pool it needs.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Pool;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::backend::Backend;
use super::{
    Change, DeliveryFilter, DeliveryInfo, EventDetail, Ingested, KeyCredentials, LeasePlan,
    LogEntry, LogFilter, Page, PoolUsage, QueueDepth, Recorded, RecoveryStart, RecoveryStep,
    Requeued, Store, StoreResult, TypeInsert, WebhookFilter, WebhookStats, accounts, deliveries,
    event_types, ingest, queue, reads, record, recovery, retention, webhooks,
};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, Job};
use crate::domain::event::NewEvent;
use crate::domain::health::HealthRules;
use crate::domain::id::{
    ApiKeyId, AttemptId, DeliveryId, EventId, RecoveryId, TenantId, WebhookId,
};
use crate::domain::recovery::Recovery;
use crate::domain::registry::EventTypeRecord;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookChange};

/// A store on backend `B`. Writes go to `writer`, reads to `reader`: on SQLite the single
/// writer connection and a read-only pool; on PostgreSQL one pool serves as both.
pub(crate) struct SqlStore<B: Backend> {
    pub(super) writer: Pool<B>,
    pub(super) reader: Pool<B>,
    /// Seals and opens webhook secrets.
    pub(super) keys: Arc<Keyring>,
    /// What the backend holds besides its pools (SQLite: the file lock; PostgreSQL: the
    /// LISTEN task).
    pub(super) extra: B::Extra,
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> StoreResult<()> {
        accounts::ping(&self.reader).await
    }

    async fn close(&self) {
        B::stop(&self.extra);
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn admin_key_hash(&self) -> StoreResult<Option<Vec<u8>>> {
        accounts::admin_key_hash(&self.reader).await
    }

    async fn set_admin_key_hash(&self, hash: &[u8]) -> StoreResult<()> {
        accounts::set_admin_key_hash(&self.writer, hash).await
    }

    async fn event_types(&self) -> StoreResult<Vec<EventTypeRecord>> {
        event_types::event_types(&self.reader).await
    }

    async fn seed_event_types(&self, records: &[EventTypeRecord]) -> StoreResult<()> {
        event_types::seed_event_types(&self.writer, records).await
    }

    async fn insert_event_type(&self, record: &EventTypeRecord) -> StoreResult<TypeInsert> {
        event_types::insert_event_type(&self.writer, record).await
    }

    async fn update_event_type(&self, record: &EventTypeRecord) -> StoreResult<bool> {
        event_types::update_event_type(&self.writer, record).await
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        accounts::insert_tenant(&self.writer, tenant).await
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        accounts::tenant(&self.reader, id).await
    }

    async fn tenants(&self, page: &Page) -> StoreResult<Vec<Tenant>> {
        accounts::tenants(&self.reader, page).await
    }

    async fn insert_api_key(&self, key: &ApiKeyInfo, key_hash: &[u8]) -> StoreResult<()> {
        accounts::insert_api_key(&self.writer, key, key_hash).await
    }

    async fn key_credentials(&self, key_id: &ApiKeyId) -> StoreResult<Option<KeyCredentials>> {
        accounts::key_credentials(&self.reader, key_id).await
    }

    async fn touch_api_key(&self, key_id: &ApiKeyId, at: Timestamp) -> StoreResult<()> {
        accounts::touch_api_key(&self.writer, key_id, at).await
    }

    async fn api_keys(&self, tenant_id: &TenantId, page: &Page) -> StoreResult<Vec<ApiKeyInfo>> {
        accounts::api_keys(&self.reader, tenant_id, page).await
    }

    async fn revoke_api_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        accounts::revoke_api_key(&self.writer, tenant_id, key_id, at).await
    }

    async fn insert_webhook(&self, webhook: &Webhook, max_per_tenant: u32) -> StoreResult<bool> {
        webhooks::insert_webhook(&self.writer, &self.keys, webhook, max_per_tenant).await
    }

    async fn webhook(&self, tenant_id: &TenantId, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        webhooks::webhook(&self.reader, &self.keys, tenant_id, id).await
    }

    async fn webhooks(
        &self,
        tenant_id: &TenantId,
        filter: &WebhookFilter,
        page: &Page,
    ) -> StoreResult<Vec<Webhook>> {
        webhooks::webhooks(&self.reader, &self.keys, tenant_id, filter, page).await
    }

    async fn update_webhook(
        &self,
        tenant_id: &TenantId,
        id: &WebhookId,
        change: WebhookChange,
        at: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        webhooks::update_webhook(&self.writer, &self.keys, tenant_id, id, change, at).await
    }

    async fn reencrypt_secrets(&self) -> StoreResult<u64> {
        webhooks::reencrypt_secrets(&self.writer, &self.keys).await
    }

    async fn delete_webhook(
        &self,
        tenant_id: &TenantId,
        id: &WebhookId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        webhooks::delete_webhook(&self.writer, tenant_id, id, at).await
    }

    async fn ingest(&self, events: &[NewEvent], plan: &LeasePlan) -> StoreResult<Vec<Ingested>> {
        ingest::ingest(&self.writer, &self.keys, events, plan).await
    }

    async fn claim_due(
        &self,
        plan: &LeasePlan,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        queue::claim_due(&self.writer, &self.keys, plan, now, limit).await
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        queue::next_due(&self.reader).await
    }

    async fn renew_lease(
        &self,
        delivery_id: &DeliveryId,
        node: &str,
        until: Timestamp,
    ) -> StoreResult<bool> {
        queue::renew_lease(&self.writer, delivery_id, node, until).await
    }

    async fn release_leases(&self, delivery_ids: &[DeliveryId], node: &str) -> StoreResult<()> {
        queue::release_leases(&self.writer, delivery_ids, node).await
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        queue::release_all_leases(&self.writer).await
    }

    async fn heartbeat(&self, node: &str, at: Timestamp) -> StoreResult<()> {
        queue::heartbeat(&self.writer, node, at).await
    }

    async fn retire(&self, node: &str) -> StoreResult<()> {
        queue::retire(&self.writer, node).await
    }

    async fn watch_for_work(&self, wake: Arc<Notify>) -> StoreResult<()> {
        B::watch_for_work(&self.extra, wake).await
    }

    async fn watch_changes(&self, node: &str, changes: UnboundedSender<Change>) -> StoreResult<()> {
        B::watch_changes(&self.extra, node, changes).await
    }

    async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        node: &str,
        rules: &HealthRules,
    ) -> StoreResult<Recorded> {
        record::record(&self.writer, &self.keys, records, node, rules).await
    }

    async fn insert_test_log(&self, entry: &LogEntry) -> StoreResult<()> {
        record::insert_test_log(&self.writer, entry).await
    }

    async fn queue_depth(&self, now: Timestamp) -> StoreResult<QueueDepth> {
        queue::queue_depth(&self.reader, now).await
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        B::pool_usage(&self.reader, &self.writer)
    }

    async fn purge_logs(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_logs(&self.writer, before, limit).await
    }

    async fn purge_events(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_events(&self.writer, before, limit).await
    }

    async fn reclaim_space(&self, pages: u32) -> StoreResult<u64> {
        B::reclaim_space(&self.writer, pages).await
    }

    async fn event(&self, tenant_id: &TenantId, id: &EventId) -> StoreResult<Option<EventDetail>> {
        reads::event(&self.reader, tenant_id, id).await
    }

    async fn logs(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        filter: &LogFilter,
        page: &Page,
    ) -> StoreResult<Vec<LogEntry>> {
        reads::logs(&self.reader, tenant_id, webhook_id, filter, page).await
    }

    async fn log(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &AttemptId,
    ) -> StoreResult<Option<LogEntry>> {
        reads::log(&self.reader, tenant_id, webhook_id, id).await
    }

    async fn stats(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        since: Option<Timestamp>,
    ) -> StoreResult<Option<WebhookStats>> {
        reads::stats(&self.reader, tenant_id, webhook_id, since).await
    }

    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryInfo>> {
        reads::deliveries(&self.reader, tenant_id, webhook_id, filter, page).await
    }

    async fn delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &DeliveryId,
    ) -> StoreResult<Option<(DeliveryInfo, Vec<LogEntry>)>> {
        reads::delivery(&self.reader, tenant_id, webhook_id, id).await
    }

    async fn retry_delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Requeued> {
        deliveries::retry_delivery(&self.writer, &self.reader, tenant_id, webhook_id, id, now).await
    }

    async fn replay(
        &self,
        tenant_id: &TenantId,
        event_id: &EventId,
        webhook_ids: &[WebhookId],
        now: Timestamp,
    ) -> StoreResult<Option<Vec<DeliveryInfo>>> {
        deliveries::replay(&self.writer, tenant_id, event_id, webhook_ids, now).await
    }

    async fn start_recovery(&self, r: &Recovery) -> StoreResult<RecoveryStart> {
        recovery::start_recovery(&self.writer, r).await
    }

    async fn recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &RecoveryId,
    ) -> StoreResult<Option<Recovery>> {
        recovery::recovery(&self.reader, tenant_id, webhook_id, id).await
    }

    async fn recoveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        page: &Page,
    ) -> StoreResult<Vec<Recovery>> {
        recovery::recoveries(&self.reader, tenant_id, webhook_id, page).await
    }

    async fn cancel_recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &RecoveryId,
        at: Timestamp,
    ) -> StoreResult<Option<Recovery>> {
        recovery::cancel_recovery(&self.writer, tenant_id, webhook_id, id, at).await
    }

    async fn advance_recoveries(
        &self,
        node: &str,
        now: Timestamp,
        horizon: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<RecoveryStep>> {
        recovery::advance_recoveries(&self.writer, &self.keys, node, now, horizon, lease_until)
            .await
    }

    async fn running_recoveries(&self) -> StoreResult<i64> {
        recovery::running_recoveries(&self.reader).await
    }
}
