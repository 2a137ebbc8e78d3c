//! Who is calling: the operator (the admin key) or a tenant (one of its keys).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Service, ServiceError, ServiceResult};
use crate::domain::apikey;
use crate::domain::id::{ApiKeyId, TenantId};
use crate::domain::time::Timestamp;
use crate::store::KeyCredentials;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Tenant(TenantId),
}

/// A caller whose key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub caller: Caller,
    /// The tenant key's id (`None` for the admin key), for limits per key.
    pub key_id: Option<ApiKeyId>,
}

impl Service {
    /// The caller a bearer token names. Unknown, revoked and expired keys are refused with
    /// what is wrong; a wrong secret for a real key id reads as an unknown key.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Authenticated> {
        let inner = &self.inner;
        if apikey::hashes_match(&apikey::hash_admin_key(token), &inner.admin_key_hash[..]) {
            return Ok(Authenticated {
                caller: Caller::Admin,
                key_id: None,
            });
        }
        let unknown = ServiceError::Unauthenticated("unknown API key");
        let Some((key_id, secret)) = apikey::parse_tenant_key(token) else {
            return Err(unknown);
        };
        let mut fresh = false;
        let credentials = match inner.key_cache.get(&key_id) {
            Some(cached) => cached,
            None => {
                let Some(found) = inner.store.key_credentials(&key_id).await? else {
                    return Err(unknown);
                };
                inner.key_cache.put(&key_id, found.clone());
                fresh = true;
                found
            }
        };
        let hash = apikey::hash_secret(&key_id, secret);
        if !apikey::hashes_match(&hash, &credentials.key_hash) {
            return Err(unknown);
        }
        if credentials.revoked_at.is_some() {
            return Err(ServiceError::Unauthenticated(
                "this API key has been revoked",
            ));
        }
        if credentials
            .expires_at
            .is_some_and(|t| t <= Timestamp::now())
        {
            return Err(ServiceError::Unauthenticated("this API key has expired"));
        }
        if fresh {
            // Read from the database at most once per cache lifetime, so `last_used_at` is
            // accurate to a few seconds for one write per interval. Never fails the request.
            if let Err(error) = inner.store.touch_api_key(&key_id, Timestamp::now()).await {
                tracing::debug!(%error, "could not record key use");
            }
        }
        Ok(Authenticated {
            caller: Caller::Tenant(credentials.tenant_id),
            key_id: Some(key_id),
        })
    }
}

/// Recently used tenant keys, so a busy client does not cost a database read per request.
/// A revocation drops the entry at once on the node that served it and, on PostgreSQL, on
/// every other node when they hear of it; an entry lives at most `ttl` whatever happens, which
/// bounds how long a node that missed the news may still accept a revoked key.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<ApiKeyId, (KeyCredentials, Instant)>>,
}

/// More keys than any real installation uses at once; past it the cache starts over.
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ApiKeyId, (KeyCredentials, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key_id: &ApiKeyId) -> Option<KeyCredentials> {
        let entries = self.entries();
        let (credentials, at) = entries.get(key_id)?;
        (at.elapsed() < self.ttl).then(|| credentials.clone())
    }

    fn put(&self, key_id: &ApiKeyId, credentials: KeyCredentials) {
        let mut entries = self.entries();
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key_id.clone(), (credentials, Instant::now()));
    }

    pub fn forget(&self, key_id: &ApiKeyId) {
        self.entries().remove(key_id);
    }

    /// Forgets every key (revocations may have been missed).
    pub fn clear(&self) {
        self.entries().clear();
    }
}
