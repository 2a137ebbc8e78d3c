//! Persistence. Handlers and the delivery engine see only the [`Store`] trait; each backend
//! (SQLite today, PostgreSQL next) implements it with its own SQL and migrations, chosen by the
//! database URL.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookPatch};

pub use sqlite::SqliteStore;

/// Why a store call failed, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the request may be retried later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness rule was broken; the name is the constraint (or index) concerned.
    #[error("conflict on {0}")]
    Conflict(String),
    /// Stored data that cannot be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a list, newest first: at most `limit` rows whose id sorts before `before`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: u32,
    pub before: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    pub is_active: Option<bool>,
}

/// What authentication needs to know about a tenant key.
#[derive(Debug, Clone)]
pub struct KeyCredentials {
    pub tenant_id: String,
    pub key_hash: Vec<u8>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Waits for in-flight work and closes connections.
    async fn close(&self);

    /// The stored hash of a generated admin key, if one was generated.
    async fn admin_key_hash(&self) -> StoreResult<Option<Vec<u8>>>;
    async fn set_admin_key_hash(&self, hash: &[u8]) -> StoreResult<()>;

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: &str) -> StoreResult<Option<Tenant>>;
    async fn tenants(&self, page: &Page) -> StoreResult<Vec<Tenant>>;

    async fn insert_api_key(&self, key: &ApiKeyInfo, key_hash: &[u8]) -> StoreResult<()>;
    async fn key_credentials(&self, key_id: &str) -> StoreResult<Option<KeyCredentials>>;
    async fn api_keys(&self, tenant_id: &str, page: &Page) -> StoreResult<Vec<ApiKeyInfo>>;
    /// Marks a key revoked; false when the tenant has no such key. Revoking twice is harmless.
    async fn revoke_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;

    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    async fn webhook(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Webhook>>;
    async fn webhooks(
        &self,
        tenant_id: &str,
        filter: &WebhookFilter,
        page: &Page,
    ) -> StoreResult<Vec<Webhook>>;
    /// Applies `patch` atomically; `None` when the tenant has no such webhook.
    async fn update_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        patch: WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<Webhook>>;
    /// Deletes the webhook and cancels its pending deliveries; false when there is none.
    async fn delete_webhook(&self, tenant_id: &str, id: &str, at: Timestamp) -> StoreResult<bool>;
}

/// Opens the store a database URL names, applying migrations.
pub async fn connect(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        anyhow::bail!(
            "PostgreSQL is not supported by this build yet; use a sqlite: URL or a file path"
        );
    }
    Ok(Arc::new(SqliteStore::open(database_url).await?))
}
