//! Settings, tenants and their API keys, written once for every backend.

use sqlx::Pool;

use super::backend::{Backend, Bind, get, get_id, query, sql};
use super::rows::{before, key_from, opt_ts, tenant_from};
use super::{KeyCredentials, Page, StoreResult};
use crate::domain::id::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;

const ADMIN_KEY_SETTING: &str = "admin_key_sha256";

pub(crate) async fn ping<B: Backend>(reader: &Pool<B>) -> StoreResult<()> {
    B::execute(reader, query("SELECT 1")).await?;
    Ok(())
}

pub(crate) async fn admin_key_hash<B: Backend>(reader: &Pool<B>) -> StoreResult<Option<Vec<u8>>> {
    let q = query("SELECT value FROM settings WHERE key = $1").s(ADMIN_KEY_SETTING);
    let row = B::fetch_optional(reader, q).await?;
    Ok(row.map(|r| get::<B, Vec<u8>>(&r, "value")).transpose()?)
}

pub(crate) async fn set_admin_key_hash<B: Backend>(
    writer: &Pool<B>,
    hash: &[u8],
) -> StoreResult<()> {
    let q = query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    B::execute(writer, q.s(ADMIN_KEY_SETTING).bytes(hash)).await?;
    Ok(())
}

pub(crate) async fn insert_tenant<B: Backend>(
    writer: &Pool<B>,
    tenant: &Tenant,
) -> StoreResult<()> {
    let q = query("INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $4)")
        .s(&tenant.id)
        .s(&tenant.name)
        .b(tenant.created_at.millis())
        .b(tenant.updated_at.millis());
    B::execute(writer, q).await?;
    Ok(())
}

pub(crate) async fn tenant<B: Backend>(
    reader: &Pool<B>,
    id: &TenantId,
) -> StoreResult<Option<Tenant>> {
    let q = query("SELECT * FROM tenants WHERE id = $1").s(id);
    B::fetch_optional(reader, q)
        .await?
        .as_ref()
        .map(tenant_from::<B>)
        .transpose()
}

pub(crate) async fn tenants<B: Backend>(reader: &Pool<B>, page: &Page) -> StoreResult<Vec<Tenant>> {
    // The system tenant (operational webhooks) is no customer: never listed.
    let q = query("SELECT * FROM tenants WHERE id < $1 AND id <> $3 ORDER BY id DESC LIMIT $2")
        .s(before(page))
        .b(i64::from(page.limit))
        .s(crate::domain::operational::SYSTEM_TENANT);
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(tenant_from::<B>)
        .collect()
}

pub(crate) async fn insert_api_key<B: Backend>(
    writer: &Pool<B>,
    key: &ApiKeyInfo,
    key_hash: &[u8],
) -> StoreResult<()> {
    let q = query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .s(&key.id)
    .s(&key.tenant_id)
    .os(key.name.as_deref())
    .s(&key.prefix)
    .bytes(key_hash)
    .b(key.created_at.millis())
    .b(key.expires_at.map(Timestamp::millis));
    B::execute(writer, q).await?;
    Ok(())
}

pub(crate) async fn key_credentials<B: Backend>(
    reader: &Pool<B>,
    key_id: &ApiKeyId,
) -> StoreResult<Option<KeyCredentials>> {
    let q = query("SELECT tenant_id, key_hash, expires_at, revoked_at FROM api_keys WHERE id = $1")
        .s(key_id);
    let Some(row) = B::fetch_optional(reader, q).await? else {
        return Ok(None);
    };
    Ok(Some(KeyCredentials {
        tenant_id: get_id::<B, _>(&row, "tenant_id")?,
        key_hash: get::<B, _>(&row, "key_hash")?,
        expires_at: opt_ts::<B>(&row, "expires_at")?,
        revoked_at: opt_ts::<B>(&row, "revoked_at")?,
    }))
}

pub(crate) async fn touch_api_key<B: Backend>(
    writer: &Pool<B>,
    key_id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<()> {
    let q = query(sql::<B>(
        "UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), $1) WHERE id = $2",
        "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE id = $2",
    ));
    B::execute(writer, q.b(at.millis()).s(key_id)).await?;
    Ok(())
}

pub(crate) async fn api_keys<B: Backend>(
    reader: &Pool<B>,
    tenant_id: &TenantId,
    page: &Page,
) -> StoreResult<Vec<ApiKeyInfo>> {
    let q = query(
        "SELECT id, tenant_id, name, prefix, created_at, expires_at, last_used_at, revoked_at
         FROM api_keys WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    )
    .s(tenant_id)
    .s(before(page))
    .b(i64::from(page.limit));
    B::fetch_all(reader, q)
        .await?
        .iter()
        .map(key_from::<B>)
        .collect()
}

pub(crate) async fn revoke_api_key<B: Backend>(
    writer: &Pool<B>,
    tenant_id: &TenantId,
    key_id: &ApiKeyId,
    at: Timestamp,
) -> StoreResult<bool> {
    let mut tx = writer.begin().await?;
    let q = query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
         WHERE id = $2 AND tenant_id = $3",
    );
    let done = B::execute_on(&mut *tx, q.b(at.millis()).s(key_id).s(tenant_id)).await?;
    if done > 0 {
        B::key_revoked_on(&mut *tx, key_id.as_str()).await?;
    }
    tx.commit().await?;
    Ok(done > 0)
}
