//! Ingest: `POST /events`, `POST /events/batch`, and `GET /events/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::value::RawValue;

use super::AppState;
use super::auth::{Caller, TenantScope};
use super::extract::{PathId, RawJson, raw_object};
use super::problem::{ApiError, ApiResult};
use super::schema::{EventType, NewEventBatchBody, NewEventBody, TenantHeader};
use crate::delivery::Accepted;
use crate::domain::delivery::DeliveryState;
use crate::domain::event::EventInput;
use crate::domain::id::EventId;
use crate::domain::input::FieldError;
use crate::domain::json::RawObject;
use crate::domain::registry::EventTypes;
use crate::domain::time::Timestamp;
use crate::service::ServiceError;

pub const MAX_BATCH: usize = crate::domain::event::BATCH_MAX;

/// The largest event, whichever route brings it: `POST /events` holds its body to it, and
/// `POST /events/batch` each of its events (the batch as a whole has its own limit).
#[derive(Debug, Clone, Copy)]
pub struct EventLimit(pub usize);

/// An accepted event.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcceptedEvent)]
pub struct AcceptedOut {
    #[schema(example = "evt_01kb7rd5f7g9h1j3k5l7z9x1c3")]
    id: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventType)]
    event_type: String,
    /// Deliveries queued: one per matching, active webhook.
    deliveries: usize,
    /// True when the idempotency key matched an earlier event, which is answered instead.
    duplicate: bool,
}

impl From<Accepted> for AcceptedOut {
    fn from(a: Accepted) -> Self {
        AcceptedOut {
            id: a.event_id.into_string(),
            event_type: a.event_type,
            deliveries: a.deliveries,
            duplicate: a.duplicate,
        }
    }
}

/// Parses one event body for this caller. Field names in errors carry `prefix` (`events[3].`
/// in a batch).
fn parse(
    caller: &Caller,
    body: &RawObject<'_>,
    prefix: &str,
    types: &EventTypes,
) -> Result<EventInput, Vec<FieldError>> {
    let admin = matches!(caller, Caller::Admin);
    EventInput::parse(body, admin, types).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| FieldError::new(format!("{prefix}{}", e.field), e.message))
            .collect()
    })
}

/// Names the events whose tenant does not exist by their place in the body.
fn name_unknown_tenants(error: ServiceError, field: impl Fn(usize) -> String) -> ApiError {
    match error {
        ServiceError::UnknownTenants(events) => ApiError::Validation(
            events
                .into_iter()
                .map(|i| FieldError::new(field(i), "no such tenant"))
                .collect(),
        ),
        other => other.into(),
    }
}

/// Trigger an event: stored with one delivery per matching, active webhook before the answer.
#[utoipa::path(post, path = "/api/v1/events", operation_id = "create_event", tag = "events",
    request_body = NewEventBody,
    responses(
        (status = 202, description = "Accepted and stored.", body = AcceptedOut),
        (status = 200, description = "The idempotency key matched an earlier event, answered \
            instead (`duplicate: true`).", body = AcceptedOut),
        (status = 404, description = "A tenant key named another tenant in `tenant_id`.",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    RawJson(bytes): RawJson,
) -> ApiResult<(StatusCode, Json<AcceptedOut>)> {
    let body = raw_object(&bytes)?;
    let types = state.service.event_types();
    let input = parse(&caller, &body, "", &types).map_err(ApiError::Validation)?;
    let accepted = state
        .service
        .send_event(&caller, input)
        .await
        .map_err(|e| name_unknown_tenants(e, |_| "tenant_id".to_owned()))?;
    let status = if accepted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted.into())))
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AcceptedEvents)]
pub struct BatchOut {
    /// In the order posted.
    data: Vec<AcceptedOut>,
}

/// Up to 500 events; all are validated before any is stored, and each is then accepted as if
/// posted alone (idempotency keys included). Each event is held to the size limit of
/// `POST /events` (its object's bytes as sent), and the batch to its own total.
#[utoipa::path(post, path = "/api/v1/events/batch", operation_id = "create_events", tag = "events",
    request_body = NewEventBatchBody,
    responses(
        (status = 202, description = "All accepted and stored.", body = BatchOut),
        (status = 422, description = "A field of some event is invalid, or an event is larger \
            than the per-event limit (`events[i]`); every such event is named.",
            body = super::schema::Problem, content_type = "application/problem+json"),
        (status = 404, description = "A tenant key named another tenant in a `tenant_id`.",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_batch(
    caller: Caller,
    State(state): State<AppState>,
    Extension(EventLimit(event_limit)): Extension<EventLimit>,
    RawJson(bytes): RawJson,
) -> ApiResult<(StatusCode, Json<BatchOut>)> {
    let body = raw_object(&bytes)?;
    let unknown: Vec<FieldError> = body
        .keys()
        .filter(|k| *k != "events")
        .map(|k| FieldError::new(k, "unknown field"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let items: Vec<&RawValue> = match body.get("events") {
        // Each event's text as sent: its size is what the per-event limit counts.
        Some(raw) => match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
            Ok(items) if !items.is_empty() && items.len() <= MAX_BATCH => items,
            Ok(_) => {
                return Err(ApiError::field(
                    "events",
                    format!("must hold 1 to {MAX_BATCH} events"),
                ));
            }
            Err(_) => return Err(ApiError::field("events", "must be an array of events")),
        },
        None => return Err(ApiError::field("events", "is required")),
    };
    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let types = state.service.event_types();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("events[{i}].");
        let size = item.get().len();
        if size > event_limit {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!(
                    "is {size} bytes; an event may be at most {event_limit} bytes, in a batch as on POST /events"
                ),
            ));
            continue;
        }
        // Anything but an object fails to parse as one (domain::json's tests).
        let object = match RawObject::parse(item.get()) {
            Ok(object) => object,
            Err(_) => {
                errors.push(FieldError::new(format!("events[{i}]"), "must be an object"));
                continue;
            }
        };
        match parse(&caller, &object, &prefix, &types) {
            Ok(input) => inputs.push(input),
            Err(mut e) => errors.append(&mut e),
        }
    }
    // Every bad field at once first; the tenants only once the bodies are well formed.
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let accepted = state
        .service
        .send_events(&caller, inputs)
        .await
        .map_err(|e| name_unknown_tenants(e, |i| format!("events[{i}].tenant_id")))?;
    let data = accepted.into_iter().map(AcceptedOut::from).collect();
    Ok((StatusCode::ACCEPTED, Json(BatchOut { data })))
}

/// One event on its way to one webhook.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub struct DeliveryOut {
    id: String,
    webhook_id: String,
    state: DeliveryState,
    attempts: i64,
    next_attempt_at: Option<Timestamp>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    completed_at: Option<Timestamp>,
}

/// An event and where each of its deliveries stands.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventOut {
    id: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventType)]
    event_type: String,
    tenant_id: String,
    created_at: Timestamp,
    idempotency_key: Option<String>,
    /// As sent.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
    deliveries: Vec<DeliveryOut>,
}

/// The `data` of a stored envelope, as it was sent.
fn stored_data(envelope: &str) -> Box<RawValue> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    serde_json::from_str::<Stored>(envelope)
        .map(|stored| stored.data.to_owned())
        .unwrap_or_else(|_| crate::domain::event::empty_object())
}

/// An event and the state of each of its deliveries.
#[utoipa::path(get, path = "/api/v1/events/{id}", operation_id = "get_event", tag = "events",
    params(TenantHeader, ("id" = String, Path, description = "Event id (`evt_…`).")),
    responses((status = 200, description = "The event.", body = EventOut)))]
pub async fn get(
    TenantScope(tenant_id): TenantScope,
    State(state): State<AppState>,
    PathId(event_id): PathId<EventId>,
) -> ApiResult<Json<EventOut>> {
    let event = state.service.event(&tenant_id, &event_id).await?;
    let data = stored_data(&event.body);
    Ok(Json(EventOut {
        id: event.id.into_string(),
        event_type: event.event_type,
        tenant_id: event.tenant_id.into_string(),
        created_at: event.created_at,
        idempotency_key: event.idempotency_key,
        data,
        deliveries: event
            .deliveries
            .into_iter()
            .map(|d| DeliveryOut {
                id: d.id.into_string(),
                webhook_id: d.webhook_id.into_string(),
                state: d.state,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_status: d.last_status,
                last_error: d.last_error,
                created_at: d.created_at,
                updated_at: d.updated_at,
                completed_at: d.completed_at,
            })
            .collect(),
    }))
}
