//! The PostgreSQL backend: for several hookrelay nodes sharing one database.
//!
//! Every node runs the same migrations at start (sqlx takes an advisory lock, so concurrent
//! starts are safe). Deliveries are claimed with `FOR UPDATE SKIP LOCKED` under a lease, and
//! nodes wake each other with `LISTEN/NOTIFY` when work is left for any node to take.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, migrate::Migrator};
use tokio::sync::Notify;

mod changes;
mod queue;
mod reads;
mod retention;

use super::{
    Change, EventDetail, Ingested, KeyCredentials, LeasePlan, LogEntry, LogFilter, Page, PoolUsage,
    QueueDepth, Store, StoreResult, WebhookFilter, WebhookStats,
};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, Job};
use crate::domain::event::NewEvent;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookChange};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const ADMIN_KEY_SETTING: &str = "admin_key_sha256";
/// The channel nodes notify when they leave deliveries for any node to claim.
const WORK_CHANNEL: &str = "hookrelay_work";

pub struct PostgresStore {
    pool: PgPool,
    /// Seals and opens webhook secrets.
    keys: Arc<Keyring>,
    /// For LISTEN, which holds its connection for good: kept out of the main pool so that
    /// closing the pool does not wait for it.
    listen_options: PgConnectOptions,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl PostgresStore {
    /// Connects with at most `max_connections` and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32, keys: Arc<Keyring>) -> anyhow::Result<Self> {
        // A statement stuck behind a lock fails after a bound instead of hanging a request:
        // the API answers 503 and the engine retries.
        let options = PgConnectOptions::from_str(url)?
            .options([("lock_timeout", "5s"), ("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore {
            pool,
            keys,
            listen_options: options,
            listener: std::sync::Mutex::new(None),
        })
    }
}

crate::store::rows::row_mappers!(PgRow);
use crate::store::rows::{before, events_json};

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        let listener = self.listener.lock().ok().and_then(|mut l| l.take());
        if let Some(listener) = listener {
            listener.abort();
        }
        self.pool.close().await;
    }

    async fn admin_key_hash(&self) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(ADMIN_KEY_SETTING)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn set_admin_key_hash(&self, hash: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ADMIN_KEY_SETTING)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.created_at.millis())
        .bind(tenant.updated_at.millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from)
            .transpose()
    }

    async fn tenants(&self, page: &Page) -> StoreResult<Vec<Tenant>> {
        sqlx::query("SELECT * FROM tenants WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before(page))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(tenant_from)
            .collect()
    }

    async fn insert_api_key(&self, key: &ApiKeyInfo, key_hash: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(key_hash)
        .bind(key.created_at.millis())
        .bind(key.expires_at.map(Timestamp::millis))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn key_credentials(&self, key_id: &str) -> StoreResult<Option<KeyCredentials>> {
        let row = sqlx::query(
            "SELECT tenant_id, key_hash, expires_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeyCredentials {
            tenant_id: row.try_get("tenant_id")?,
            key_hash: row.try_get("key_hash")?,
            expires_at: opt_ts(&row, "expires_at")?,
            revoked_at: opt_ts(&row, "revoked_at")?,
        }))
    }

    async fn touch_api_key(&self, key_id: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE id = $2",
        )
        .bind(at.millis())
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_keys(&self, tenant_id: &str, page: &Page) -> StoreResult<Vec<ApiKeyInfo>> {
        sqlx::query(
            "SELECT id, tenant_id, name, prefix, created_at, expires_at, last_used_at, revoked_at
             FROM api_keys WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before(page))
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from)
        .collect()
    }

    async fn revoke_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
             WHERE id = $2 AND tenant_id = $3",
        )
        .bind(at.millis())
        .bind(key_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            changes::key_revoked(&mut tx, key_id).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_webhook(&self, w: &Webhook, max_per_tenant: u32) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if max_per_tenant > 0 {
            // Creates for one tenant queue on its row, so the count below stays true.
            sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE")
                .bind(&w.tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, name, description, url, events, secret, status,
                retry_count, timeout_seconds, headers, rate_limit_per_second, is_active,
                created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
             WHERE $16 = 0 OR (SELECT COUNT(*) FROM webhooks WHERE tenant_id = $2) < $16",
        )
        .bind(&w.id)
        .bind(&w.tenant_id)
        .bind(&w.name)
        .bind(&w.description)
        .bind(&w.url)
        .bind(events_json(w))
        .bind(self.keys.seal(&w.secret, &w.id))
        .bind(w.status.as_str())
        .bind(w.retry_count)
        .bind(w.timeout_seconds)
        .bind(crate::store::rows::seal_headers(&self.keys, w))
        .bind(w.rate_limit_per_second)
        .bind(w.is_active)
        .bind(w.created_at.millis())
        .bind(w.updated_at.millis())
        .bind(i64::from(max_per_tenant))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn webhook(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        sqlx::query("SELECT * FROM webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|row| webhook_from(row, &self.keys))
            .transpose()
    }

    async fn webhooks(
        &self,
        tenant_id: &str,
        filter: &WebhookFilter,
        page: &Page,
    ) -> StoreResult<Vec<Webhook>> {
        sqlx::query(
            "SELECT * FROM webhooks
             WHERE tenant_id = $1 AND id < $2 AND ($3::BOOLEAN IS NULL OR is_active = $3)
             ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant_id)
        .bind(before(page))
        .bind(filter.is_active)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| webhook_from(row, &self.keys))
        .collect()
    }

    async fn update_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        change: WebhookChange,
        at: Timestamp,
    ) -> StoreResult<Option<Webhook>> {
        // The single writer connection serialises this read-modify-write; the UPDATE names
        // only writable columns, so counters moved by deliveries meanwhile are never lost.
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut w = webhook_from(&row, &self.keys)?;
        w.change(change, at);
        sqlx::query(
            "UPDATE webhooks SET name = $1, description = $2, url = $3, events = $4, secret = $5,
                previous_secret = $6, previous_secret_expires_at = $7, status = $8,
                retry_count = $9, timeout_seconds = $10, headers = $11,
                rate_limit_per_second = $12, is_active = $13, updated_at = $14
             WHERE id = $15",
        )
        .bind(&w.name)
        .bind(&w.description)
        .bind(&w.url)
        .bind(events_json(&w))
        .bind(self.keys.seal(&w.secret, &w.id))
        .bind(
            w.previous_secret
                .as_ref()
                .map(|(s, _)| self.keys.seal(s, &w.id)),
        )
        .bind(w.previous_secret.as_ref().map(|(_, until)| until.millis()))
        .bind(w.status.as_str())
        .bind(w.retry_count)
        .bind(w.timeout_seconds)
        .bind(crate::store::rows::seal_headers(&self.keys, &w))
        .bind(w.rate_limit_per_second)
        .bind(w.is_active)
        .bind(w.updated_at.millis())
        .bind(&w.id)
        .execute(&mut *tx)
        .await?;
        changes::webhook_changed(&mut tx, &w.id).await?;
        tx.commit().await?;
        Ok(Some(w))
    }

    async fn reencrypt_secrets(&self) -> StoreResult<u64> {
        use crate::store::rows::{SealedColumns, reseal};
        let rows = sqlx::query("SELECT id, secret, previous_secret, headers FROM webhooks")
            .fetch_all(&self.pool)
            .await?;
        let mut sealed = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            let stored = SealedColumns {
                secret: row.try_get("secret")?,
                previous_secret: row.try_get("previous_secret")?,
                headers: row.try_get("headers")?,
            };
            let Some(fresh) = reseal(&self.keys, &id, &stored)? else {
                continue;
            };
            // Only if unchanged meanwhile: a concurrent update already sealed it afresh.
            sqlx::query(
                "UPDATE webhooks SET secret = $1, previous_secret = $2, headers = $3
                 WHERE id = $4 AND secret = $5 AND previous_secret IS NOT DISTINCT FROM $6
                   AND headers IS NOT DISTINCT FROM $7",
            )
            .bind(fresh.secret)
            .bind(fresh.previous_secret)
            .bind(fresh.headers)
            .bind(&id)
            .bind(&stored.secret)
            .bind(&stored.previous_secret)
            .bind(&stored.headers)
            .execute(&self.pool)
            .await?;
            sealed += 1;
        }
        Ok(sealed)
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str, at: Timestamp) -> StoreResult<bool> {
        // Deliveries first, then the webhook: the order the recorder locks them in, so the
        // two never deadlock.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', updated_at = $1, completed_at = $1,
                leased_until = NULL, leased_by = NULL
             WHERE webhook_id = $2 AND tenant_id = $3 AND state = 'pending'",
        )
        .bind(at.millis())
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false); // dropping the transaction undoes the cancel
        }
        changes::webhook_changed(&mut tx, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ingest(&self, events: &[NewEvent], plan: &LeasePlan) -> StoreResult<Vec<Ingested>> {
        queue::ingest(&self.pool, events, plan, &self.keys).await
    }

    async fn claim_due(
        &self,
        plan: &LeasePlan,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        queue::claim_due(&self.pool, plan, now, limit, &self.keys).await
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        queue::next_due(&self.pool).await
    }

    async fn renew_lease(
        &self,
        delivery_id: &str,
        node: &str,
        until: Timestamp,
    ) -> StoreResult<bool> {
        queue::renew_lease(&self.pool, delivery_id, node, until).await
    }

    async fn release_leases(&self, delivery_ids: &[String], node: &str) -> StoreResult<()> {
        queue::release_leases(&self.pool, delivery_ids, node).await
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        // Other nodes may hold leases right now: they are never freed from here. A crashed
        // node's leases expire by themselves.
        Ok(0)
    }

    async fn heartbeat(&self, node: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO nodes (id, heartbeat_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(node)
        .bind(at.millis())
        .execute(&self.pool)
        .await?;
        // Rows of nodes long gone, so the table stays the size of the cluster.
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
            .bind(at.millis() - 24 * 3600 * 1000)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retire(&self, node: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn watch_for_work(&self, wake: Arc<Notify>) -> StoreResult<()> {
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(self.listen_options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&listen_pool).await?;
        listener.listen(WORK_CHANNEL).await?;
        let task = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake.notify_one(),
                    Err(error) => {
                        // PgListener reconnects on the next recv; polling covers the gap.
                        tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        if let Ok(mut slot) = self.listener.lock() {
            *slot = Some(task);
        }
        Ok(())
    }

    async fn watch_changes(
        &self,
        node: &str,
        changes: tokio::sync::mpsc::UnboundedSender<Change>,
    ) -> StoreResult<()> {
        changes::watch(&self.listen_options, node, changes).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord], node: &str) -> StoreResult<()> {
        queue::record_attempts(&self.pool, records, node, &self.keys).await
    }

    async fn insert_test_log(&self, entry: &LogEntry) -> StoreResult<()> {
        queue::insert_log(
            &self.pool,
            &crate::store::batch::LogRow::of(entry),
            &self.keys,
        )
        .await
    }

    async fn queue_depth(&self, now: Timestamp) -> StoreResult<QueueDepth> {
        queue::queue_depth(&self.pool, now).await
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        vec![PoolUsage {
            name: "main",
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn purge_logs(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_logs(&self.pool, before, limit).await
    }

    async fn purge_events(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_events(&self.pool, before, limit).await
    }

    async fn event(&self, tenant_id: &str, id: &str) -> StoreResult<Option<EventDetail>> {
        reads::event(&self.pool, tenant_id, id).await
    }

    async fn logs(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        filter: &LogFilter,
        page: &Page,
    ) -> StoreResult<Vec<LogEntry>> {
        reads::logs(&self.pool, tenant_id, webhook_id, filter, page).await
    }

    async fn log(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        id: &str,
    ) -> StoreResult<Option<LogEntry>> {
        reads::log(&self.pool, tenant_id, webhook_id, id).await
    }

    async fn stats(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Option<Timestamp>,
    ) -> StoreResult<Option<WebhookStats>> {
        reads::stats(&self.pool, tenant_id, webhook_id, since).await
    }
}
