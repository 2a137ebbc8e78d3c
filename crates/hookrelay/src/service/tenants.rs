//! The operator's side: tenants and their API keys.

use super::{Service, ServiceError, ServiceResult};
use crate::domain::apikey;
use crate::domain::id::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyInfo, NewApiKey, NewTenant, Tenant};
use crate::domain::time::Timestamp;
use crate::store::Page;

/// A new API key: the one time the key itself is known.
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    /// The key to send as `Authorization: Bearer <key>`.
    pub token: String,
}

impl Service {
    pub async fn create_tenant(&self, new: NewTenant) -> ServiceResult<Tenant> {
        let now = Timestamp::now();
        let tenant = Tenant {
            id: TenantId::new(),
            name: new.name,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.insert_tenant(&tenant).await?;
        Ok(tenant)
    }

    /// A page of tenants, newest first.
    pub async fn tenants(&self, page: &Page) -> ServiceResult<Vec<Tenant>> {
        Ok(self.inner.store.tenants(page).await?)
    }

    /// The tenant, or not found. The system tenant (operational webhooks) is not found
    /// either: no tenant route, key or `X-Tenant-Id` reaches it.
    pub async fn tenant(&self, tenant_id: &TenantId) -> ServiceResult<Tenant> {
        if crate::domain::operational::is_system_tenant(tenant_id) {
            return Err(ServiceError::NotFound("tenant"));
        }
        self.inner
            .store
            .tenant(tenant_id)
            .await?
            .ok_or(ServiceError::NotFound("tenant"))
    }

    /// A new key for the tenant; only its hash is stored.
    pub async fn create_api_key(
        &self,
        tenant_id: &TenantId,
        new: NewApiKey,
    ) -> ServiceResult<CreatedKey> {
        let tenant = self.tenant(tenant_id).await?;
        let minted = apikey::mint_tenant_key();
        let info = ApiKeyInfo {
            id: minted.id,
            tenant_id: tenant.id,
            name: new.name,
            prefix: minted.prefix,
            created_at: Timestamp::now(),
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        self.inner.store.insert_api_key(&info, &minted.hash).await?;
        Ok(CreatedKey {
            info,
            token: minted.token,
        })
    }

    /// A page of the tenant's keys, newest first (never the keys themselves).
    pub async fn api_keys(
        &self,
        tenant_id: &TenantId,
        page: &Page,
    ) -> ServiceResult<Vec<ApiKeyInfo>> {
        let tenant = self.tenant(tenant_id).await?;
        Ok(self.inner.store.api_keys(&tenant.id, page).await?)
    }

    /// Revokes a key; it stops working at once on this node, and on the others as soon as
    /// they hear of it (at most the key cache's lifetime).
    pub async fn revoke_api_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
    ) -> ServiceResult<()> {
        let tenant = self.tenant(tenant_id).await?;
        let revoked = self
            .inner
            .store
            .revoke_api_key(&tenant.id, key_id, Timestamp::now())
            .await?;
        if !revoked {
            return Err(ServiceError::NotFound("API key"));
        }
        self.inner.key_cache.forget(key_id);
        Ok(())
    }
}
