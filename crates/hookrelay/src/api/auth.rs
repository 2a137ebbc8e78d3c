//! Who is calling. `Authorization: Bearer <key>` names either the operator (the admin key) or a
//! tenant (a tenant key). Tenant-scoped routes act on the key's tenant; the admin key may act on
//! any tenant by naming it in `X-Tenant-Id`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::domain::apikey;
use crate::domain::id;
use crate::domain::time::Timestamp;

pub const TENANT_HEADER: &str = "x-tenant-id";

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
        let credentials = state
            .store
            .key_credentials(&key_id)
            .await?
            .ok_or(ApiError::Unauthorized("unknown API key"))?;
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
        Ok(Caller::Tenant(credentials.tenant_id))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
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
                let tenant_id = parts
                    .headers
                    .get(TENANT_HEADER)
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
