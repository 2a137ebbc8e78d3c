//! Who is calling. `Authorization: Bearer <key>` names either the operator (the admin key) or a
//! tenant (a tenant key). Tenant-scoped routes act on the key's tenant; the admin key may act on
//! any tenant by naming it in `X-Tenant-Id`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::problem::ApiError;
use crate::domain::id::TenantId;
pub use crate::service::Caller;

pub const TENANT_HEADER: &str = "x-tenant-id";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let authenticated = state.service.authenticate(token).await?;
        if let Some(key_id) = &authenticated.key_id {
            state.limits.check_key(key_id)?;
        }
        Ok(authenticated.caller)
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

/// The tenant a tenant-scoped route acts on: the key's own, or the one the admin key names.
pub struct TenantScope(pub TenantId);

impl FromRequestParts<AppState> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Tenant(tenant_id) => Ok(TenantScope(tenant_id)),
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
                // Malformed is answered as missing, as in a path.
                let tenant_id = TenantId::parse(tenant_id).ok_or(ApiError::NotFound("tenant"))?;
                let tenant = state.service.tenant(&tenant_id).await?;
                Ok(TenantScope(tenant.id))
            }
        }
    }
}
