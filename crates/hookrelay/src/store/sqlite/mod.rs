//! The SQLite backend: the zero-configuration default.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection
//! (no `SQLITE_BUSY` storms, writes queue in the pool instead) while reads use a pool of their
//! own. WAL mode lets readers proceed during writes; `synchronous=FULL` makes every commit
//! durable before it returns, which is what "accepted" promises.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, migrate::Migrator};

mod queue;
mod reads;
mod retention;

use super::{
    EventDetail, Ingested, KeyCredentials, LeasePlan, LogEntry, LogFilter, Page, PoolUsage,
    QueueDepth, Store, StoreResult, WebhookFilter, WebhookStats,
};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, Job};
use crate::domain::event::NewEvent;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookChange};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CONNECTIONS: u32 = 4;
const ADMIN_KEY_SETTING: &str = "admin_key_sha256";

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Seals and opens webhook secrets.
    keys: Arc<Keyring>,
    /// An exclusive lock on `<database>.lock`, held while this store lives: a second
    /// hookrelay process on the same file would free this one's leases at its start and
    /// send deliveries twice, so it is refused instead.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite:path` or a
    /// plain path) and applies pending migrations.
    pub async fn open(url: &str, keys: Arc<Keyring>) -> anyhow::Result<Self> {
        let lock = lock_database(url)?;
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(ACQUIRE_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            keys,
            _lock: lock,
        })
    }
}

/// Takes the database's lock file, or explains who holds it. The operating system frees the
/// lock when the process ends, however it ends.
fn lock_database(url: &str) -> anyhow::Result<std::fs::File> {
    let mut path = crate::store::sqlite_path(url).into_os_string();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another hookrelay process is using {} (one process per SQLite file; for several \
             nodes use PostgreSQL)",
            crate::store::sqlite_path(url).display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}

/// What `/metrics` shows of a pool.
fn usage(name: &'static str, pool: &SqlitePool) -> PoolUsage {
    PoolUsage {
        name,
        size: pool.size(),
        idle: pool.num_idle(),
        max: pool.options().get_max_connections(),
    }
}

crate::store::rows::row_mappers!(SqliteRow);
use crate::store::rows::{before, events_json};

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn admin_key_hash(&self) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(ADMIN_KEY_SETTING)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn set_admin_key_hash(&self, hash: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(ADMIN_KEY_SETTING)
        .bind(hash)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        sqlx::query("INSERT INTO tenants (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at.millis())
            .bind(tenant.updated_at.millis())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn tenant(&self, id: &str) -> StoreResult<Option<Tenant>> {
        sqlx::query("SELECT * FROM tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(tenant_from)
            .transpose()
    }

    async fn tenants(&self, page: &Page) -> StoreResult<Vec<Tenant>> {
        sqlx::query("SELECT * FROM tenants WHERE id < ? ORDER BY id DESC LIMIT ?")
            .bind(before(page))
            .bind(page.limit)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(tenant_from)
            .collect()
    }

    async fn insert_api_key(&self, key: &ApiKeyInfo, key_hash: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(key_hash)
        .bind(key.created_at.millis())
        .bind(key.expires_at.map(Timestamp::millis))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn key_credentials(&self, key_id: &str) -> StoreResult<Option<KeyCredentials>> {
        let row = sqlx::query(
            "SELECT tenant_id, key_hash, expires_at, revoked_at FROM api_keys WHERE id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.reader)
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
            "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
        )
        .bind(at.millis())
        .bind(key_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn api_keys(&self, tenant_id: &str, page: &Page) -> StoreResult<Vec<ApiKeyInfo>> {
        sqlx::query(
            "SELECT id, tenant_id, name, prefix, created_at, expires_at, last_used_at, revoked_at
             FROM api_keys WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(before(page))
        .bind(page.limit)
        .fetch_all(&self.reader)
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
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?)
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(at.millis())
        .bind(key_id)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_webhook(&self, w: &Webhook, max_per_tenant: u32) -> StoreResult<bool> {
        // One statement on the single writer: the count and the insert cannot interleave
        // with another create.
        let done = sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, name, description, url, events, secret, status,
                retry_count, timeout_seconds, headers, rate_limit_per_second, is_active,
                created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
             WHERE ?16 = 0 OR (SELECT COUNT(*) FROM webhooks WHERE tenant_id = ?2) < ?16",
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
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn webhook(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        sqlx::query("SELECT * FROM webhooks WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.reader)
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
             WHERE tenant_id = ? AND id < ? AND (? IS NULL OR is_active = ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(before(page))
        .bind(filter.is_active)
        .bind(filter.is_active)
        .bind(page.limit)
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query("SELECT * FROM webhooks WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut w = webhook_from(&row, &self.keys)?;
        w.change(change, at);
        sqlx::query(
            "UPDATE webhooks SET name = ?, description = ?, url = ?, events = ?, secret = ?,
                previous_secret = ?, previous_secret_expires_at = ?, status = ?, retry_count = ?,
                timeout_seconds = ?, headers = ?, rate_limit_per_second = ?, is_active = ?,
                updated_at = ?
             WHERE id = ?",
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
        tx.commit().await?;
        Ok(Some(w))
    }

    async fn reencrypt_secrets(&self) -> StoreResult<u64> {
        use crate::store::rows::{SealedColumns, reseal};
        let rows = sqlx::query("SELECT id, secret, previous_secret, headers FROM webhooks")
            .fetch_all(&self.writer)
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
                "UPDATE webhooks SET secret = ?, previous_secret = ?, headers = ?
                 WHERE id = ? AND secret = ? AND previous_secret IS ? AND headers IS ?",
            )
            .bind(fresh.secret)
            .bind(fresh.previous_secret)
            .bind(fresh.headers)
            .bind(&id)
            .bind(&stored.secret)
            .bind(&stored.previous_secret)
            .bind(&stored.headers)
            .execute(&self.writer)
            .await?;
            sealed += 1;
        }
        Ok(sealed)
    }

    async fn delete_webhook(&self, tenant_id: &str, id: &str, at: Timestamp) -> StoreResult<bool> {
        // Deliveries first, then the webhook: the order the recorder locks them in, so the
        // two never deadlock.
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', updated_at = ?1, completed_at = ?1,
                leased_until = NULL, leased_by = NULL
             WHERE webhook_id = ?2 AND tenant_id = ?3 AND state = 'pending'",
        )
        .bind(at.millis())
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false); // dropping the transaction undoes the cancel
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn ingest(&self, events: &[NewEvent], plan: &LeasePlan) -> StoreResult<Vec<Ingested>> {
        queue::ingest(&self.writer, events, plan, &self.keys).await
    }

    async fn claim_due(
        &self,
        plan: &LeasePlan,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        queue::claim_due(&self.writer, plan, now, limit, &self.keys).await
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        queue::next_due(&self.reader).await
    }

    async fn renew_lease(
        &self,
        delivery_id: &str,
        node: &str,
        until: Timestamp,
    ) -> StoreResult<bool> {
        queue::renew_lease(&self.writer, delivery_id, node, until).await
    }

    async fn release_leases(&self, delivery_ids: &[String], node: &str) -> StoreResult<()> {
        queue::release_leases(&self.writer, delivery_ids, node).await
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        queue::release_all_leases(&self.writer).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord], node: &str) -> StoreResult<()> {
        queue::record_attempts(&self.writer, records, node, &self.keys).await
    }

    async fn insert_test_log(&self, entry: &LogEntry) -> StoreResult<()> {
        queue::insert_log(
            &self.writer,
            &crate::store::batch::LogRow::of(entry),
            &self.keys,
        )
        .await
    }

    async fn queue_depth(&self, now: Timestamp) -> StoreResult<QueueDepth> {
        queue::queue_depth(&self.reader, now).await
    }

    fn pool_usage(&self) -> Vec<PoolUsage> {
        vec![usage("writer", &self.writer), usage("reader", &self.reader)]
    }

    async fn purge_logs(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_logs(&self.writer, before, limit).await
    }

    async fn purge_events(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        retention::purge_events(&self.writer, before, limit).await
    }

    async fn reclaim_space(&self, pages: u32) -> StoreResult<u64> {
        retention::reclaim_space(&self.writer, pages).await
    }

    async fn event(&self, tenant_id: &str, id: &str) -> StoreResult<Option<EventDetail>> {
        reads::event(&self.reader, tenant_id, id).await
    }

    async fn logs(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        filter: &LogFilter,
        page: &Page,
    ) -> StoreResult<Vec<LogEntry>> {
        reads::logs(&self.reader, tenant_id, webhook_id, filter, page).await
    }

    async fn log(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        id: &str,
    ) -> StoreResult<Option<LogEntry>> {
        reads::log(&self.reader, tenant_id, webhook_id, id).await
    }

    async fn stats(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        since: Option<Timestamp>,
    ) -> StoreResult<Option<WebhookStats>> {
        reads::stats(&self.reader, tenant_id, webhook_id, since).await
    }
}
