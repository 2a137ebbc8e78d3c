//! What happened to a webhook's deliveries: attempt logs, statistics, and the test send.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::AppState;
use super::auth::TenantScope;
use super::extract::{List, OptionalRawJson, PathId, PathIds, QueryParams, check, raw_object};
use super::problem::{ApiError, ApiResult};
use super::schema::{EventType, PageQuery, TenantHeader, TestBody};
use crate::domain::catalog;
use crate::domain::id::{AttemptId, DeliveryId, EventId, WebhookId};
use crate::domain::input::{FieldError, Input};
use crate::domain::json::{self, RawObject};
use crate::domain::time::Timestamp;
use crate::store::{LogEntry, LogFilter};

/// One attempt as the API shows it. `request_headers` only on the single-log route.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Log)]
pub struct LogOut {
    #[schema(example = "att_01kb7rb2w4e6r8t0y2u4i6o8p0")]
    id: String,
    tenant_id: String,
    webhook_id: String,
    delivery_id: Option<String>,
    event_id: Option<String>,
    #[schema(value_type = EventType)]
    event_type: String,
    /// The envelope sent (`id`, `type`, `tenant_id`, `created_at`, `data`), byte for byte.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    /// The request headers sent; on `GET /webhooks/{id}/logs/{log_id}` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    request_headers: Option<Value>,
    response_status: Option<i64>,
    response_body: Option<String>,
    response_body_truncated: bool,
    response_time_ms: Option<i64>,
    error_message: Option<String>,
    attempt_count: i64,
    is_success: bool,
    is_test: bool,
    created_at: Timestamp,
}

impl LogOut {
    pub(super) fn new(e: LogEntry, with_headers: bool) -> Self {
        // As sent: parsed into a value, its numbers would be rewritten as floats.
        // (What is not JSON, which only a damaged row could hold, is shown as a string.)
        let text = if serde_json::from_str::<serde::de::IgnoredAny>(&e.payload).is_ok() {
            e.payload
        } else {
            serde_json::to_string(&e.payload).unwrap_or_default()
        };
        let payload =
            RawValue::from_string(text).unwrap_or_else(|_| crate::domain::event::empty_object());
        let request_headers = with_headers.then(|| {
            e.request_headers
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok())
                .unwrap_or(Value::Object(Map::new()))
        });
        LogOut {
            id: e.id.into_string(),
            tenant_id: e.tenant_id.into_string(),
            webhook_id: e.webhook_id.into_string(),
            delivery_id: e.delivery_id.map(DeliveryId::into_string),
            event_id: e.event_id.map(EventId::into_string),
            event_type: e.event_type,
            payload,
            request_headers,
            response_status: e.response_status,
            response_body: e.response_body,
            response_body_truncated: e.response_body_truncated,
            response_time_ms: e.response_time_ms,
            error_message: e.error_message,
            attempt_count: e.attempt_count,
            is_success: e.is_success,
            is_test: e.is_test,
            created_at: e.created_at,
        }
    }
}

/// A webhook's attempts, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/logs", operation_id = "list_logs", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."), PageQuery,
        ("event_type" = Option<EventType>, Query, description = "Only this event type."),
        ("success" = Option<bool>, Query, description = "Only successful (or failed) attempts."),
        ("since" = Option<String>, Query, format = DateTime, description = "Only attempts at or after (RFC 3339)."),
        ("until" = Option<String>, Query, format = DateTime, description = "Only attempts before (RFC 3339).")),
    responses((status = 200, description = "A page of attempts.", body = List<LogOut>)))]
pub async fn logs(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    query: QueryParams,
) -> ApiResult<Json<List<LogOut>>> {
    let mut errors = Vec::new();
    let scope = super::extract::list_scope(&state.cursors, "logs", webhook_id.as_str());
    let page = query.page(&scope, &mut errors)?;
    let event_type = query.0.get("event_type").cloned();
    if let Some(t) = &event_type
        && state.service.event_types().find(t).is_none()
    {
        errors.push(FieldError::new("event_type", "unknown event type"));
    }
    let filter = LogFilter {
        event_type,
        success: query.bool("success", &mut errors),
        since: query.time("since", &mut errors),
        until: query.time("until", &mut errors),
    };
    check(errors)?;
    let rows = state
        .service
        .logs(&tenant_id, &webhook_id, &filter, &page)
        .await?;
    let list = List::from_page(rows, &page, &scope, |l| l.id.as_str());
    Ok(Json(List {
        data: list
            .data
            .into_iter()
            .map(|l| LogOut::new(l, false))
            .collect(),
        next_cursor: list.next_cursor,
    }))
}

/// One attempt in full, with the request headers sent.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/logs/{log_id}", operation_id = "get_log", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("log_id" = String, Path, description = "Attempt id (`att_…`).")),
    responses((status = 200, description = "The attempt.", body = LogOut)))]
pub async fn log(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathIds(webhook_id, log_id): PathIds<WebhookId, AttemptId>,
) -> ApiResult<Json<LogOut>> {
    let entry = state.service.log(&tenant_id, &webhook_id, &log_id).await?;
    Ok(Json(LogOut::new(entry, true)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptCounts {
    total: i64,
    successful: i64,
    failed: i64,
}

/// Milliseconds over the attempts that got an answer; `null` before any.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResponseTimes {
    avg: Option<f64>,
    p50: Option<i64>,
    p95: Option<i64>,
    p99: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookStats)]
pub struct StatsOut {
    webhook_id: String,
    since: Option<Timestamp>,
    total_deliveries: i64,
    successful_deliveries: i64,
    failed_deliveries: i64,
    pending_deliveries: i64,
    /// Successful share of ended deliveries, 0 to 1; `null` before any ended.
    #[schema(minimum = 0, maximum = 1)]
    success_rate: Option<f64>,
    attempts: AttemptCounts,
    response_time_ms: ResponseTimes,
    last_success_at: Option<Timestamp>,
    last_failure_at: Option<Timestamp>,
    /// Failed attempts since the last successful one.
    consecutive_failures: i64,
    /// Events the webhook subscribes to that its filter kept from becoming deliveries, since
    /// it was created (`since` does not apply: a filtered event leaves no row to count).
    filtered_events: i64,
}

/// Counts, success rate and response times of a webhook's deliveries.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/stats", operation_id = "get_webhook_stats", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`)."),
        ("since" = Option<String>, Query, format = DateTime, description = "Count from this time on (RFC 3339).")),
    responses((status = 200, description = "The statistics.", body = StatsOut)))]
pub async fn stats(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    query: QueryParams,
) -> ApiResult<Json<StatsOut>> {
    let mut errors = Vec::new();
    let since = query.time("since", &mut errors);
    check(errors)?;
    let (hook, s) = state.service.stats(&tenant_id, &webhook_id, since).await?;
    let ended = s.successful_deliveries + s.failed_deliveries;
    let success_rate =
        (ended > 0).then(|| (s.successful_deliveries as f64 / ended as f64 * 1e4).round() / 1e4);
    Ok(Json(StatsOut {
        webhook_id: hook.id.into_string(),
        since,
        total_deliveries: s.total_deliveries,
        successful_deliveries: s.successful_deliveries,
        failed_deliveries: s.failed_deliveries,
        pending_deliveries: s.pending_deliveries,
        success_rate,
        attempts: AttemptCounts {
            total: s.attempts,
            successful: s.successful_attempts,
            failed: s.attempts - s.successful_attempts,
        },
        response_time_ms: ResponseTimes {
            avg: s.avg_response_time_ms.map(|v| (v * 10.0).round() / 10.0),
            p50: s.p50_response_time_ms,
            p95: s.p95_response_time_ms,
            p99: s.p99_response_time_ms,
        },
        last_success_at: s.last_success_at,
        last_failure_at: s.last_failure_at,
        consecutive_failures: s.consecutive_failures,
        filtered_events: s.filtered_events,
    }))
}

/// The outcome of a test send.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TestResult)]
pub struct TestOut {
    success: bool,
    #[schema(value_type = EventType)]
    event_type: String,
    response_status: Option<u16>,
    response_time_ms: i64,
    response_body: Option<String>,
    error: Option<String>,
    log_id: String,
    /// Whether the webhook's filter lets this event through: `false` means a real event like
    /// it would get no delivery (the test is sent all the same); `null`: it has no filter.
    filter_matched: Option<bool>,
}

/// One synchronous signed attempt with the catalogue's sample (or a custom payload).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "activity",
    params(TenantHeader, ("id" = String, Path, description = "Webhook id (`wh_…`).")),
    request_body(content = Option<TestBody>, description = "May be empty."),
    responses((status = 200, description = "The outcome (a failed attempt is still a 200).",
        body = TestOut)))]
pub async fn test(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(webhook_id): PathId<WebhookId>,
    OptionalRawJson(bytes): OptionalRawJson,
) -> ApiResult<Json<TestOut>> {
    let body = match &bytes {
        Some(bytes) => raw_object(bytes)?,
        None => RawObject::default(),
    };
    // `payload` is sent on as given, like an event's `data`.
    let fields = body.parsed_except(&["payload"]);
    let mut input = Input::new(&fields, &["event_type"]);
    let types = state.service.event_types();
    let event_type = input.optional("event_type", |v| {
        v.as_str()
            .and_then(|name| types.find(name))
            .map(|t| t.name)
            .ok_or(catalog::NotAnEventType)
    });
    let payload = match body.get("payload") {
        Some(raw) if json::is_object(raw) => Some(raw.to_owned()),
        Some(_) => {
            input.push(FieldError::new("payload", "must be a JSON object"));
            None
        }
        None => None,
    };
    let (event_type, payload) = input
        .finish(|| (event_type, payload))
        .map_err(ApiError::Validation)?;
    let sent = state
        .service
        .test_send(&tenant_id, &webhook_id, event_type, payload)
        .await?;
    let outcome = sent.outcome;
    Ok(Json(TestOut {
        success: outcome.is_success(),
        event_type: sent.event_type.to_owned(),
        response_status: outcome.response_status,
        response_time_ms: outcome.response_time_ms,
        response_body: outcome.response_body,
        error: outcome.error,
        log_id: sent.log_id.into_string(),
        filter_matched: sent.filter_matched,
    }))
}
