//! Admin routes: operational webhooks, the operator's endpoints for hookrelay's own events
//! (`domain/operational.rs`). They are the system tenant's webhooks, so each route calls the
//! same service function as its tenant twin in `api/webhooks.rs`, with that tenant; tenant
//! keys get 403, and no tenant route reaches the system tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Admin;
use super::extract::{JsonObject, List, PathId, QueryParams, check};
use super::problem::{ApiError, ApiResult};
use super::schema::{OperationalWebhookBody, OperationalWebhookPatchBody, PageQuery};
use super::webhooks::WebhookOut;
use crate::domain::catalog::WILDCARD;
use crate::domain::id::WebhookId;
use crate::domain::operational::{CATALOG, system_tenant};
use crate::domain::webhook::{Catalogue, NewWebhook, WebhookPatch};
use crate::store::WebhookFilter;

/// Register an operational webhook (same validation, SSRF guard and signing as a tenant's
/// webhook). The answer carries the whole secret.
#[utoipa::path(post, path = "/api/v1/operational-webhooks", operation_id = "create_operational_webhook", tag = "operational",
    request_body = OperationalWebhookBody,
    responses((status = 201, description = "The operational webhook, with its whole secret.", body = WebhookOut)))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<WebhookOut>)> {
    let new = NewWebhook::parse_for(
        &body,
        Catalogue::Operational,
        state.service.max_retry_delay(),
    )
    .map_err(ApiError::Validation)?;
    let webhook = state.service.create_webhook(&system_tenant(), new).await?;
    Ok((StatusCode::CREATED, Json(WebhookOut::new(webhook, true))))
}

/// List operational webhooks, newest first (secrets masked).
#[utoipa::path(get, path = "/api/v1/operational-webhooks", operation_id = "list_operational_webhooks", tag = "operational",
    params(PageQuery),
    responses((status = 200, description = "A page of operational webhooks.", body = List<WebhookOut>)))]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<List<WebhookOut>>> {
    let tenant_id = system_tenant();
    let mut errors = Vec::new();
    let scope =
        super::extract::list_scope(&state.cursors, "operational-webhooks", tenant_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    check(errors)?;
    let filter = WebhookFilter { is_active: None };
    let rows = state.service.webhooks(&tenant_id, &filter, &page).await?;
    let list = List::from_page(rows, &page, &scope, |w| w.id.as_str());
    Ok(Json(List {
        data: list
            .data
            .into_iter()
            .map(|w| WebhookOut::new(w, false))
            .collect(),
        next_cursor: list.next_cursor,
    }))
}

/// One operational webhook (secret masked).
#[utoipa::path(get, path = "/api/v1/operational-webhooks/{id}", operation_id = "get_operational_webhook", tag = "operational",
    params(("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The operational webhook.", body = WebhookOut)))]
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<WebhookOut>> {
    let webhook = state.service.webhook(&system_tenant(), &webhook_id).await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// Change any subset of an operational webhook's writable fields.
#[utoipa::path(patch, path = "/api/v1/operational-webhooks/{id}", operation_id = "update_operational_webhook", tag = "operational",
    params(("id" = String, Path, description = "Webhook id (`wh_…`).")),
    request_body = OperationalWebhookPatchBody,
    responses((status = 200, description = "The operational webhook as changed.", body = WebhookOut)))]
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<WebhookOut>> {
    let patch = WebhookPatch::parse_for(
        &body,
        Catalogue::Operational,
        state.service.max_retry_delay(),
    )
    .map_err(ApiError::Validation)?;
    let webhook = state
        .service
        .update_webhook(&system_tenant(), &webhook_id, patch)
        .await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// Delete an operational webhook; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/api/v1/operational-webhooks/{id}", operation_id = "delete_operational_webhook", tag = "operational",
    params(("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_webhook(&system_tenant(), &webhook_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable an operational webhook again (held deliveries resume).
#[utoipa::path(post, path = "/api/v1/operational-webhooks/{id}/enable", operation_id = "enable_operational_webhook", tag = "operational",
    params(("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The operational webhook, active.", body = WebhookOut)))]
pub async fn enable(
    _: Admin,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<WebhookOut>> {
    let webhook = state
        .service
        .enable_webhook(&system_tenant(), &webhook_id)
        .await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// One entry of the operational catalogue.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OperationalEventTypeInfo)]
pub struct OperationalTypeOut {
    #[schema(value_type = super::schema::OperationalSubscription)]
    name: &'static str,
    description: &'static str,
    /// An example of the event's `data` (absent for `*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    sample: Option<Value>,
}

/// The operational event catalogue, then the wildcard: what operational webhooks may
/// subscribe to. For operators only; tenants never receive these.
#[utoipa::path(get, path = "/api/v1/operational-webhooks/events", operation_id = "list_operational_event_types", tag = "operational",
    responses((status = 200, description = "Every operational event type, then `*`; one page.",
        body = List<OperationalTypeOut>)))]
pub async fn events(_: Admin) -> Json<List<OperationalTypeOut>> {
    let mut data: Vec<OperationalTypeOut> = CATALOG
        .iter()
        .map(|t| OperationalTypeOut {
            name: t.name,
            description: t.description,
            sample: serde_json::from_str(t.sample).ok(),
        })
        .collect();
    data.push(OperationalTypeOut {
        name: WILDCARD,
        description: "Every operational event type, including those added later.",
        sample: None,
    });
    Json(List {
        data,
        next_cursor: None,
    })
}
