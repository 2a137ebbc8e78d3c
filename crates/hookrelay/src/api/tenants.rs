//! Admin routes: tenants and their API keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::auth::Admin;
use super::extract::{JsonObject, List, PathId, PathIds, QueryParams, check};
use super::problem::{ApiError, ApiResult};
use super::schema::{NewApiKeyBody, NewTenantBody, PageQuery};
use crate::domain::id::{ApiKeyId, TenantId};
use crate::domain::tenant::{ApiKeyInfo, NewApiKey, NewTenant, Tenant};
use crate::domain::time::Timestamp;

/// Create a tenant.
#[utoipa::path(post, path = "/api/v1/tenants", operation_id = "create_tenant", tag = "tenants",
    request_body = NewTenantBody,
    responses((status = 201, description = "The tenant.", body = Tenant)))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    let new = NewTenant::parse(&body).map_err(ApiError::Validation)?;
    let tenant = state.service.create_tenant(new).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// List tenants, newest first.
#[utoipa::path(get, path = "/api/v1/tenants", operation_id = "list_tenants", tag = "tenants", params(PageQuery),
    responses((status = 200, description = "A page of tenants.", body = List<Tenant>)))]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<List<Tenant>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "tenants", "operator");
    let page = query.page(&scope, &mut errors)?;
    check(errors)?;
    let rows = state.service.tenants(&page).await?;
    Ok(Json(List::from_page(rows, &page, &scope, |t| {
        t.id.as_str()
    })))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", operation_id = "get_tenant", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id (`ten_…`).")),
    responses((status = 200, description = "The tenant.", body = Tenant)))]
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    PathId(tenant_id): PathId<TenantId>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(state.service.tenant(&tenant_id).await?))
}

/// A new API key: the one answer that carries the key itself.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedApiKey)]
pub struct CreatedKey {
    #[serde(flatten)]
    info: ApiKeyInfo,
    /// The key to send as `Authorization: Bearer <key>`. Shown only here, once.
    #[schema(example = "hr_01kb7r5m2t0a7vq8s9k3c4d5e6_3q2l5Kx0dWJ4nE9pRzT1vYh8aB6cD7eF2gH4iJ5k")]
    key: String,
}

/// Create an API key for a tenant. The key is in this answer only.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/keys", operation_id = "create_api_key", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id (`ten_…`).")),
    request_body = NewApiKeyBody,
    responses((status = 201, description = "The key, with `key`.", body = CreatedKey)))]
pub async fn create_key(
    _: Admin,
    State(state): State<AppState>,
    PathId(tenant_id): PathId<TenantId>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let new = NewApiKey::parse(&body, Timestamp::now()).map_err(ApiError::Validation)?;
    let created = state.service.create_api_key(&tenant_id, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            info: created.info,
            key: created.token,
        }),
    ))
}

/// List a tenant's API keys, newest first (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/keys", operation_id = "list_api_keys", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id (`ten_…`)."), PageQuery),
    responses((status = 200, description = "A page of keys.", body = List<ApiKeyInfo>)))]
pub async fn list_keys(
    _: Admin,
    State(state): State<AppState>,
    PathId(tenant_id): PathId<TenantId>,
    query: QueryParams,
) -> ApiResult<Json<List<ApiKeyInfo>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "keys", tenant_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    check(errors)?;
    let rows = state.service.api_keys(&tenant_id, &page).await?;
    Ok(Json(List::from_page(rows, &page, &scope, |k| {
        k.id.as_str()
    })))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/keys/{key_id}", operation_id = "revoke_api_key", tag = "tenants",
    params(("id" = String, Path, description = "Tenant id (`ten_…`)."),
        ("key_id" = String, Path, description = "Key id (`key_…`).")),
    responses((status = 204, description = "Revoked.")))]
pub async fn revoke_key(
    _: Admin,
    State(state): State<AppState>,
    PathIds(tenant_id, key_id): PathIds<TenantId, ApiKeyId>,
) -> ApiResult<StatusCode> {
    state.service.revoke_api_key(&tenant_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
