//! Tenant routes: webhooks and the event catalogue.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::{Caller, TenantScope};
use super::extract::{JsonObject, List, OptionalJsonObject, PathId, QueryParams, check};
use super::problem::{ApiError, ApiResult};
use super::schema::{NewWebhookBody, PageQuery, RotationBody, TenantHeader, WebhookPatchBody};
use crate::domain::catalog;
use crate::domain::health::DisabledReason;
use crate::domain::id::WebhookId;
use crate::domain::time::Timestamp;
use crate::domain::webhook::{NewWebhook, Rotation, Webhook, WebhookPatch, WebhookStatus};
use crate::domain::{retry, secret};
use crate::store::WebhookFilter;

/// A webhook as the API shows it. The secret is whole only in the create answer and on
/// `GET /webhooks/{id}/secret`; everywhere else it is masked. Custom header values are
/// masked everywhere (the create answer too: the client just sent them) and read on
/// `GET /webhooks/{id}/headers`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookOut {
    #[schema(example = "wh_01kb7r8q3n5c2x7v9b4m6k1j0h")]
    id: String,
    tenant_id: String,
    name: String,
    description: Option<String>,
    url: String,
    /// What it subscribes to: names from its catalogue (the tenant catalogue, or for an
    /// operational webhook the operational one), or `*`.
    events: Vec<String>,
    /// Whole in the create answer; elsewhere masked (`whsec_abcd…`): read it with
    /// `GET /webhooks/{id}/secret`.
    secret: String,
    status: WebhookStatus,
    /// Why it is `disabled`: `manual` (switched off by its tenant), `gone` (the receiver
    /// answered 410 Gone) or `failing` (deliveries failed continuously for `disable_after`);
    /// `null` unless disabled.
    disabled_reason: Option<DisabledReason>,
    /// When it was disabled; `null` unless disabled.
    disabled_at: Option<Timestamp>,
    /// When it became `failing` (a streak of failed deliveries); `null` unless failing.
    failing_since: Option<Timestamp>,
    /// How long deliveries may fail continuously before the webhook is disabled: a duration
    /// (`"5d"`), `"off"`, or `null` for the server's default (`--disable-after`).
    #[schema(value_type = Option<String>, example = "5d")]
    disable_after: Value,
    /// Retries after a first failed attempt: as set, or the length of `retry_schedule`.
    #[schema(minimum = 0, maximum = 20)]
    retry_count: i64,
    /// The delay before each retry, normalised (`"5m"`, `"1h 30m"`; the `standard` preset is
    /// shown as its delays); `null`: the server's exponential backoff, `retry_count` times.
    #[schema(value_type = Option<Vec<String>>, example = json!(["5s", "5m", "30m", "2h"]))]
    retry_schedule: Option<Vec<String>>,
    timeout_seconds: i64,
    /// Extra headers sent with every delivery (names lowercase), their values masked
    /// (`***`) in every answer: read them with `GET /webhooks/{id}/headers`.
    #[schema(value_type = std::collections::HashMap<String, String>,
        example = json!({"authorization": "***"}))]
    headers: serde_json::Value,
    /// Deliveries per second at most; `null`: no limit.
    rate_limit_per_second: Option<i64>,
    /// The payload filter, as written: events whose envelope it refuses get no delivery
    /// (counted as `filtered_events` in the statistics); `null`: every subscribed event.
    #[schema(value_type = Option<Object>, example = json!({"data.channel": {"$eq": "whatsapp"}}))]
    filter: Option<Value>,
    is_active: bool,
    total_deliveries: i64,
    successful_deliveries: i64,
    failed_deliveries: i64,
    last_triggered_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl WebhookOut {
    pub(super) fn new(w: Webhook, reveal_secret: bool) -> Self {
        let retry_count = w.retry_total();
        WebhookOut {
            retry_count,
            status: w.status(),
            disabled_reason: w.health.disabled_reason(),
            disabled_at: w.health.disabled.map(|(_, at)| at),
            failing_since: w.health.failing_since,
            disable_after: w.health.disable_after.to_json(),
            is_active: w.is_active(),
            secret: if reveal_secret {
                w.secret
            } else {
                secret::mask(&w.secret)
            },
            id: w.id.into_string(),
            tenant_id: w.tenant_id.into_string(),
            name: w.name,
            description: w.description,
            url: w.url,
            events: w.events,
            retry_schedule: w
                .retry_schedule
                .as_ref()
                .map(|s| s.iter().map(|d| retry::format_human(*d)).collect()),
            timeout_seconds: w.timeout_seconds,
            headers: crate::domain::headers::to_masked_json(&w.headers),
            rate_limit_per_second: w.rate_limit_per_second,
            filter: w.filter.map(|f| f.source().clone()),
            total_deliveries: w.total_deliveries,
            successful_deliveries: w.successful_deliveries,
            failed_deliveries: w.failed_deliveries,
            last_triggered_at: w.last_triggered_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// Create a webhook. The answer carries the whole secret.
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "create_webhook", tag = "webhooks", params(TenantHeader),
    request_body = NewWebhookBody,
    responses((status = 201, description = "The webhook, with its whole secret.", body = WebhookOut)))]
pub async fn create(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<WebhookOut>)> {
    let new = NewWebhook::parse(
        &body,
        &state.service.event_types(),
        state.service.max_retry_delay(),
    )
    .map_err(ApiError::Validation)?;
    let webhook = state.service.create_webhook(&tenant_id, new).await?;
    Ok((StatusCode::CREATED, Json(WebhookOut::new(webhook, true))))
}

/// List webhooks, newest first (secrets masked).
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    params(TenantHeader, PageQuery,
        ("is_active" = Option<bool>, Query, description = "Only active (or inactive) webhooks.")),
    responses((status = 200, description = "A page of webhooks.", body = List<WebhookOut>)))]
pub async fn list(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    query: QueryParams,
) -> ApiResult<Json<List<WebhookOut>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "webhooks", tenant_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    let filter = WebhookFilter {
        is_active: query.bool("is_active", &mut errors),
    };
    check(errors)?;
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

/// One webhook (secret masked).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The webhook.", body = WebhookOut)))]
pub async fn get(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<WebhookOut>> {
    let webhook = state.service.webhook(&tenant_id, &webhook_id).await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// A webhook's signing secret(s).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookSecret)]
pub struct SecretOut {
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    secret: String,
    /// During a rotation: the previous secret, still signing until `previous_secret_expires_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<Timestamp>,
}

impl SecretOut {
    fn of(webhook: Webhook) -> Self {
        let previous = webhook
            .previous_secret
            .filter(|(_, until)| *until > Timestamp::now());
        SecretOut {
            secret: webhook.secret,
            previous_secret_expires_at: previous.as_ref().map(|(_, until)| *until),
            previous_secret: previous.map(|(secret, _)| secret),
        }
    }
}

/// A new secret now; the old one keeps signing beside it for the grace period (default 24 h,
/// at most 7 days), so receivers can switch without missing a delivery.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    request_body(content = Option<RotationBody>, description = "May be empty."),
    responses((status = 200, description = "The new secret, and the old one while it still signs.",
        body = SecretOut)))]
pub async fn rotate_secret(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> ApiResult<Json<SecretOut>> {
    let rotation = Rotation::parse(&body.unwrap_or_default()).map_err(ApiError::Validation)?;
    let webhook = state
        .service
        .rotate_secret(&tenant_id, &webhook_id, rotation)
        .await?;
    Ok(Json(SecretOut::of(webhook)))
}

/// A webhook's whole secret (and the previous one during a rotation).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/secret", operation_id = "get_webhook_secret", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The secret.", body = SecretOut)))]
pub async fn get_secret(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<SecretOut>> {
    let webhook = state.service.webhook(&tenant_id, &webhook_id).await?;
    Ok(Json(SecretOut::of(webhook)))
}

/// A webhook's custom headers, values in clear.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookHeaders)]
pub struct HeadersOut {
    /// Sent with every delivery (names lowercase), in the order given.
    #[schema(value_type = std::collections::HashMap<String, String>,
        example = json!({"authorization": "Bearer 8f14e45fceea167a5a36dedd4bea2543"}))]
    headers: serde_json::Value,
}

/// A webhook's custom headers with their values, which every other answer masks (they often
/// carry the receiver's credentials).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/headers", operation_id = "get_webhook_headers", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The headers.", body = HeadersOut)))]
pub async fn get_headers(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<HeadersOut>> {
    let webhook = state.service.webhook(&tenant_id, &webhook_id).await?;
    Ok(Json(HeadersOut {
        headers: crate::domain::headers::to_json(&webhook.headers),
    }))
}

/// Change any subset of a webhook's writable fields.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    request_body = WebhookPatchBody,
    responses((status = 200, description = "The webhook as changed.", body = WebhookOut)))]
pub async fn update(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<WebhookOut>> {
    let patch = WebhookPatch::parse(
        &body,
        &state.service.event_types(),
        state.service.max_retry_delay(),
    )
    .map_err(ApiError::Validation)?;
    let webhook = state
        .service
        .update_webhook(&tenant_id, &webhook_id, patch)
        .await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// Enable a webhook: held deliveries resume and the failure streak is cleared (the same as
/// `PATCH {"is_active": true}`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", operation_id = "enable_webhook", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The webhook, active.", body = WebhookOut)))]
pub async fn enable(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<WebhookOut>> {
    let webhook = state
        .service
        .enable_webhook(&tenant_id, &webhook_id)
        .await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// Disable a webhook (reason `manual`): pending deliveries are held, new events are not
/// delivered to it (the same as `PATCH {"is_active": false}`).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/disable", operation_id = "disable_webhook", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 200, description = "The webhook, disabled.", body = WebhookOut)))]
pub async fn disable(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<Json<WebhookOut>> {
    let webhook = state
        .service
        .disable_webhook(&tenant_id, &webhook_id)
        .await?;
    Ok(Json(WebhookOut::new(webhook, false)))
}

/// Delete a webhook; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_webhook(&tenant_id, &webhook_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One entry of the event catalogue.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventTypeInfo)]
pub struct EventTypeOut {
    #[schema(value_type = super::schema::Subscription)]
    name: &'static str,
    description: String,
    /// An example of the event's `data` (absent for `*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    sample: Option<Value>,
    /// The JSON Schema an event's `data` satisfies, where the type has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    schema: Option<Value>,
    /// Still sent and delivered, but on its way out: the operator retired it.
    deprecated: bool,
}

/// The registry's types, then the wildcard. Any valid key may read it: it names no tenant's
/// data.
#[utoipa::path(get, path = "/api/v1/webhooks/events", operation_id = "list_event_types", tag = "webhooks",
    responses((status = 200, description = "Every event type, then `*`; one page.",
        body = List<EventTypeOut>)))]
pub async fn events(_: Caller, State(state): State<AppState>) -> Json<List<EventTypeOut>> {
    let types = state.service.event_types();
    let mut data: Vec<EventTypeOut> = types
        .iter()
        .map(|t| EventTypeOut {
            name: t.name,
            description: t.description.clone(),
            sample: Some(t.sample.clone()),
            schema: t.schema.clone(),
            deprecated: t.deprecated(),
        })
        .collect();
    data.push(EventTypeOut {
        name: catalog::WILDCARD,
        description: "Every event type, including those added to the catalogue later.".to_owned(),
        sample: None,
        schema: None,
        deprecated: false,
    });
    Json(List {
        data,
        next_cursor: None,
    })
}
