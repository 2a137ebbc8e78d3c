//! After things went wrong: a webhook's deliveries as a resource, retrying one, recovering a
//! window of failures, and replaying an event.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::activity::LogOut;
use super::auth::TenantScope;
use super::extract::{JsonObject, List, OptionalJsonObject, PathId, PathIds, QueryParams, check};
use super::problem::{ApiError, ApiResult};
use super::schema::{PageQuery, RecoverBody, ReplayBody, TenantHeader};
use crate::domain::id::{DeliveryId, EventId, RecoveryId, WebhookId};
use crate::domain::input::{FieldError, Input};
use crate::domain::recovery::{DeliveryStatus, Recovery, RecoveryState};
use crate::domain::time::Timestamp;
use crate::service::{DeliveryQuery, DeliveryView, REPLAY_WEBHOOKS_MAX};

/// One event on its way to one webhook, as the webhook's deliveries show it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryOut {
    #[schema(example = "dlv_01kb7rb2w4e6r8t0y2u4i6o8p0")]
    id: String,
    webhook_id: String,
    event_id: String,
    #[schema(value_type = super::schema::EventType)]
    event_type: String,
    status: DeliveryStatus,
    /// Attempts of the current chain (a retry or a recovery starts a new one).
    attempts: i64,
    next_attempt_at: Option<Timestamp>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    completed_at: Option<Timestamp>,
}

impl From<DeliveryView> for DeliveryOut {
    fn from(v: DeliveryView) -> Self {
        let d = v.delivery;
        DeliveryOut {
            id: d.id.into_string(),
            webhook_id: d.webhook_id.into_string(),
            event_id: d.event_id.into_string(),
            event_type: d.event_type,
            status: v.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            completed_at: d.completed_at,
        }
    }
}

/// A delivery and every attempt made for it, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDeliveryDetail)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    delivery: DeliveryOut,
    attempt_log: Vec<LogOut>,
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", operation_id = "list_deliveries", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."), PageQuery,
        ("status" = Option<DeliveryStatus>, Query, description = "Only deliveries in this status."),
        ("since" = Option<String>, Query, format = DateTime, description = "Only deliveries made at or after (RFC 3339)."),
        ("until" = Option<String>, Query, format = DateTime, description = "Only deliveries made before (RFC 3339).")),
    responses((status = 200, description = "A page of deliveries.", body = List<DeliveryOut>)))]
pub async fn list(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    query: QueryParams,
) -> ApiResult<Json<List<DeliveryOut>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "deliveries", webhook_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    let status = query.0.get("status").and_then(|raw| {
        let parsed = DeliveryStatus::parse(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "status",
                "must be pending, held, succeeded, failed or cancelled",
            ));
        }
        parsed
    });
    let filter = DeliveryQuery {
        status,
        since: query.time("since", &mut errors),
        until: query.time("until", &mut errors),
    };
    check(errors)?;
    let rows = state
        .service
        .deliveries(&tenant_id, &webhook_id, &filter, &page)
        .await?;
    let list = List::from_page(rows, &page, &scope, |d| d.delivery.id.as_str());
    Ok(Json(List {
        data: list.data.into_iter().map(DeliveryOut::from).collect(),
        next_cursor: list.next_cursor,
    }))
}

/// One delivery, with the attempts of every chain made for it.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}", operation_id = "get_delivery", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("delivery_id" = String, Path, description = "Delivery id (`dlv_…`).")),
    responses((status = 200, description = "The delivery and its attempts.", body = DeliveryDetailOut)))]
pub async fn get(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathIds(webhook_id, delivery_id): PathIds<WebhookId, DeliveryId>,
) -> ApiResult<Json<DeliveryDetailOut>> {
    let (view, attempts) = state
        .service
        .delivery(&tenant_id, &webhook_id, &delivery_id)
        .await?;
    Ok(Json(DeliveryDetailOut {
        delivery: view.into(),
        attempt_log: attempts
            .into_iter()
            .map(|a| LogOut::new(a, false))
            .collect(),
    }))
}

/// Queue a failed delivery again, due now, with a new chain of attempts. The statistics move
/// by what the outcome changes: a success now is one more success and one fewer failure.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", operation_id = "retry_delivery", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("delivery_id" = String, Path, description = "Delivery id (`dlv_…`).")),
    responses(
        (status = 202, description = "Queued again.", body = DeliveryOut),
        (status = 409, description = "The delivery is not failed (pending, held, succeeded or \
            cancelled): only a failed delivery is retried.",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathIds(webhook_id, delivery_id): PathIds<WebhookId, DeliveryId>,
) -> ApiResult<(StatusCode, Json<DeliveryOut>)> {
    let view = state
        .service
        .retry_delivery(&tenant_id, &webhook_id, &delivery_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(view.into())))
}

/// A recovery as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Recovery)]
pub struct RecoveryOut {
    #[schema(example = "rcv_01kb7rb2w4e6r8t0y2u4i6o8p0")]
    id: String,
    webhook_id: String,
    state: RecoveryState,
    /// Failed deliveries made in `[since, until)` are re-queued, oldest first.
    since: Timestamp,
    until: Timestamp,
    /// Deliveries re-queued per second at most.
    pace: u32,
    /// Failed deliveries found in the window (grows if more of them fail meanwhile).
    total: i64,
    requeued: i64,
    /// 0–100; 100 once completed.
    #[schema(minimum = 0, maximum = 100)]
    progress_percent: u8,
    created_at: Timestamp,
    updated_at: Timestamp,
    completed_at: Option<Timestamp>,
}

impl From<Recovery> for RecoveryOut {
    fn from(r: Recovery) -> Self {
        RecoveryOut {
            progress_percent: r.percent(),
            id: r.id.into_string(),
            webhook_id: r.webhook_id.into_string(),
            state: r.state,
            since: r.window.since,
            until: r.window.until,
            pace: r.pace,
            total: r.total,
            requeued: r.requeued,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        }
    }
}

fn timestamp(v: &Value) -> Result<Timestamp, InvalidTime> {
    v.as_str()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or(InvalidTime)
}

#[derive(Debug, thiserror::Error)]
#[error("must be an RFC 3339 timestamp, e.g. 2026-01-31T09:00:00Z")]
struct InvalidTime;

/// Re-queue every failed delivery made in the window, oldest first, at the webhook's
/// `rate_limit_per_second` (or the server's recovery pace), in the background. One recovery
/// runs per webhook at a time.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/recover", operation_id = "recover_webhook", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    request_body = RecoverBody,
    responses(
        (status = 202, description = "Started; follow it at `GET /webhooks/{id}/recoveries/{recovery_id}`.",
            body = RecoveryOut),
        (status = 409, description = "A recovery is already running for this webhook (the detail \
            names it).", body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn recover(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<RecoveryOut>)> {
    let mut input = Input::new(&body, &["since", "until"]);
    let since = input.required("since", timestamp);
    let until = input.optional("until", timestamp);
    let (since, until) = input
        .finish(|| (since, until))
        .map_err(ApiError::Validation)?;
    // `finish` succeeded, so the required field was there and parsed.
    let since =
        since.ok_or_else(|| ApiError::Validation(vec![FieldError::new("since", "is required")]))?;
    let recovery = state
        .service
        .recover(&tenant_id, &webhook_id, since, until)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(recovery.into())))
}

/// A webhook's recoveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/recoveries", operation_id = "list_recoveries", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."), PageQuery),
    responses((status = 200, description = "A page of recoveries.", body = List<RecoveryOut>)))]
pub async fn recoveries(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    query: QueryParams,
) -> ApiResult<Json<List<RecoveryOut>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "recoveries", webhook_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    check(errors)?;
    let rows = state
        .service
        .recoveries(&tenant_id, &webhook_id, &page)
        .await?;
    let list = List::from_page(rows, &page, &scope, |r| r.id.as_str());
    Ok(Json(List {
        data: list.data.into_iter().map(RecoveryOut::from).collect(),
        next_cursor: list.next_cursor,
    }))
}

/// One recovery and how far along it is.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/recoveries/{recovery_id}", operation_id = "get_recovery", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("recovery_id" = String, Path, description = "Recovery id (`rcv_…`).")),
    responses((status = 200, description = "The recovery.", body = RecoveryOut)))]
pub async fn recovery(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathIds(webhook_id, recovery_id): PathIds<WebhookId, RecoveryId>,
) -> ApiResult<Json<RecoveryOut>> {
    let recovery = state
        .service
        .recovery(&tenant_id, &webhook_id, &recovery_id)
        .await?;
    Ok(Json(recovery.into()))
}

/// Stop a running recovery; what it already re-queued stays queued.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/recoveries/{recovery_id}/cancel", operation_id = "cancel_recovery", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("recovery_id" = String, Path, description = "Recovery id (`rcv_…`).")),
    responses(
        (status = 200, description = "The recovery, cancelled (cancelling twice is harmless).",
            body = RecoveryOut),
        (status = 409, description = "The recovery has already completed.",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathIds(webhook_id, recovery_id): PathIds<WebhookId, RecoveryId>,
) -> ApiResult<Json<RecoveryOut>> {
    let recovery = state
        .service
        .cancel_recovery(&tenant_id, &webhook_id, &recovery_id)
        .await?;
    Ok(Json(recovery.into()))
}

/// What a replay made.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Replay)]
pub struct ReplayOut {
    event_id: String,
    /// One new delivery per webhook, each with the event's own id as `webhook-id`.
    deliveries: Vec<DeliveryOut>,
}

/// Send a stored event again: to the webhooks named, or to every webhook that subscribes to
/// its type now. Each replay is a new delivery that carries the event's own id as
/// `webhook-id`, so a receiver that already processed the event recognises it.
#[utoipa::path(post, path = "/api/v1/events/{id}/replay", operation_id = "replay_event", tag = "events",
    params(TenantHeader, ("id" = String, Path, description = "Event id (`evt_…`).")),
    request_body(content = Option<ReplayBody>, description = "May be empty: every subscribed webhook."),
    responses((status = 202, description = "Queued, one delivery per webhook.", body = ReplayOut)))]
pub async fn replay(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(event_id): PathId<EventId>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> ApiResult<(StatusCode, Json<ReplayOut>)> {
    let body = body.unwrap_or_default();
    let mut input = Input::new(&body, &["webhook_ids"]);
    let ids = match body.get("webhook_ids") {
        None => None,
        Some(v) => webhook_ids(v, &mut input),
    };
    let ids = input.finish(|| ids).map_err(ApiError::Validation)?;
    let made = state.service.replay(&tenant_id, &event_id, ids).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayOut {
            event_id: event_id.into_string(),
            deliveries: made.into_iter().map(DeliveryOut::from).collect(),
        }),
    ))
}

/// `webhook_ids`: 1 to [`REPLAY_WEBHOOKS_MAX`] ids, each error naming its entry.
fn webhook_ids(v: &Value, input: &mut Input<'_>) -> Option<Vec<WebhookId>> {
    let Some(list) = v
        .as_array()
        .filter(|l| (1..=REPLAY_WEBHOOKS_MAX).contains(&l.len()))
    else {
        input.push(FieldError::new(
            "webhook_ids",
            format!("must be a list of 1 to {REPLAY_WEBHOOKS_MAX} webhook ids"),
        ));
        return None;
    };
    let mut ids = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        match v.as_str().and_then(WebhookId::parse) {
            Some(id) => ids.push(id),
            None => input.push(FieldError::new(
                format!("webhook_ids[{i}]"),
                "must be a webhook id (`wh_…`)",
            )),
        }
    }
    (ids.len() == list.len()).then_some(ids)
}
