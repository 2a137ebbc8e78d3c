//! Who is calling. `Authorization: Bearer <key>` names either the operator (the admin key) or a
//! tenant (a tenant key). Tenant-scoped routes act on the key's tenant; the admin key may act on
//! any tenant by naming it in `X-Tenant-Id`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::domain::apikey;
use crate::domain::id;
use crate::domain::time::Timestamp;
use crate::store::KeyCredentials;

pub const TENANT_HEADER: &str = "x-tenant-id";

/// Recently used tenant keys, so a busy client does not cost a database read per request.
/// A revocation drops the entry at once on the node that served it and, on PostgreSQL, on
/// every other node when they hear of it; an entry lives at most `ttl` whatever happens, which
/// bounds how long a node that missed the news may still accept a revoked key.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (KeyCredentials, Instant)>>,
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

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (KeyCredentials, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key_id: &str) -> Option<KeyCredentials> {
        let entries = self.entries();
        let (credentials, at) = entries.get(key_id)?;
        (at.elapsed() < self.ttl).then(|| credentials.clone())
    }

    fn put(&self, key_id: &str, credentials: KeyCredentials) {
        let mut entries = self.entries();
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key_id.to_owned(), (credentials, Instant::now()));
    }

    pub fn forget(&self, key_id: &str) {
        self.entries().remove(key_id);
    }

    /// Forgets every key (revocations may have been missed).
    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Tenant(String),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        if apikey::hashes_match(&apikey::hash_admin_key(token), &state.admin_key_hash[..]) {
            return Ok(Caller::Admin);
        }
        let (key_id, secret) =
            apikey::parse_tenant_key(token).ok_or(ApiError::Unauthorized("unknown API key"))?;
        let mut fresh = false;
        let credentials = match state.keys.get(&key_id) {
            Some(cached) => cached,
            None => {
                let found = state
                    .store
                    .key_credentials(&key_id)
                    .await?
                    .ok_or(ApiError::Unauthorized("unknown API key"))?;
                state.keys.put(&key_id, found.clone());
                fresh = true;
                found
            }
        };
        let hash = apikey::hash_secret(&key_id, secret);
        if !apikey::hashes_match(&hash, &credentials.key_hash) {
            return Err(ApiError::Unauthorized("unknown API key"));
        }
        if credentials.revoked_at.is_some() {
            return Err(ApiError::Unauthorized("this API key has been revoked"));
        }
        if credentials
            .expires_at
            .is_some_and(|t| t <= Timestamp::now())
        {
            return Err(ApiError::Unauthorized("this API key has expired"));
        }
        state.limits.check_key(&key_id)?;
        if fresh {
            // Read from the database at most once per cache lifetime, so `last_used_at` is
            // accurate to a few seconds for one write per interval. Never fails the request.
            if let Err(error) = state.store.touch_api_key(&key_id, Timestamp::now()).await {
                tracing::debug!(%error, "could not record key use");
            }
        }
        Ok(Caller::Tenant(credentials.tenant_id))
    }
}

/// The value of header `name` (`shown` in errors), if sent. Sent twice is a 400: which one
/// counts is ambiguous, and a proxy that reads the last would see another caller.
fn single_header<'a>(
    parts: &'a Parts,
    name: impl header::AsHeaderName,
    shown: &str,
) -> Result<Option<&'a header::HeaderValue>, ApiError> {
    let mut values = parts.headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "more than one {shown} header; send exactly one"
        )));
    }
    Ok(first)
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = single_header(parts, header::AUTHORIZATION, "Authorization")?
        .ok_or(ApiError::Unauthorized("no Authorization header"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("malformed Authorization header"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized(
            "malformed Authorization header (expected Bearer)",
        ));
    }
    Ok(token)
}

/// The operator, on an admin-only route. A tenant key here is a 403: it is a valid key, just
/// not allowed.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Admin),
            Caller::Tenant(_) => Err(ApiError::Forbidden),
        }
    }
}

/// The tenant a tenant-scoped route acts on.
pub struct TenantId(pub String);

impl FromRequestParts<AppState> for TenantId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Tenant(tenant_id) => Ok(TenantId(tenant_id)),
            Caller::Admin => {
                let tenant_id = single_header(parts, TENANT_HEADER, "X-Tenant-Id")?
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .ok_or_else(|| {
                        ApiError::field(
                            "X-Tenant-Id",
                            "the admin key must name the tenant to act on in this header",
                        )
                    })?;
                if !id::is_valid(id::TENANT, tenant_id) {
                    return Err(ApiError::NotFound("tenant"));
                }
                match state.store.tenant(tenant_id).await? {
                    Some(tenant) => Ok(TenantId(tenant.id)),
                    None => Err(ApiError::NotFound("tenant")),
                }
            }
        }
    }
}
