//! Ingest: `POST /events`, `POST /events/batch`, and `GET /events/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::value::RawValue;

use super::AppState;
use super::auth::{Caller, TenantId};
use super::extract::{PathId, RawJson, raw_object};
use super::openapi::{EventType, NewEventBatchBody, NewEventBody, TenantHeader};
use super::problem::{ApiError, ApiResult};
use crate::delivery::{Accepted, IngestError};
use crate::domain::delivery::DeliveryState;
use crate::domain::event::{EventInput, NewEvent};
use crate::domain::id;
use crate::domain::input::FieldError;
use crate::domain::json::RawObject;
use crate::domain::time::Timestamp;

pub const MAX_BATCH: usize = 500;

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
            id: a.event_id,
            event_type: a.event_type,
            deliveries: a.deliveries,
            duplicate: a.duplicate,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Unavailable(why) => ApiError::Unavailable(why),
            IngestError::ShuttingDown => ApiError::Unavailable("shutting down".into()),
            IngestError::Internal(why) => ApiError::Internal(anyhow::anyhow!(why)),
        }
    }
}

/// Validates one event body for this caller and builds the event. Field names in errors
/// carry `prefix` (`events[3].` in a batch).
fn prepare(
    caller: &Caller,
    body: &RawObject<'_>,
    now: Timestamp,
    prefix: &str,
) -> Result<NewEvent, Refusal> {
    let admin = matches!(caller, Caller::Admin);
    let input = EventInput::parse(body, admin).map_err(|errors| {
        Refusal::Fields(
            errors
                .into_iter()
                .map(|e| FieldError::new(format!("{prefix}{}", e.field), e.message))
                .collect(),
        )
    })?;
    let tenant_id = match caller {
        // A tenant key may name its own tenant, so that one body suits both kinds of key.
        // Another tenant is answered as every other tenant's object is: 404, whether it
        // exists or not.
        Caller::Tenant(own) => match &input.tenant_id {
            Some(named) if named != own => return Err(Refusal::ForeignTenant),
            _ => own.clone(),
        },
        // The admin's body must name the tenant: `parse` refused it otherwise.
        Caller::Admin => input.tenant_id.clone().unwrap_or_default(),
    };
    Ok(NewEvent::new(tenant_id, &input, now))
}

/// Why an event body was refused.
enum Refusal {
    Fields(Vec<FieldError>),
    ForeignTenant,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Fields(errors) => ApiError::Validation(errors),
            Refusal::ForeignTenant => ApiError::NotFound("tenant"),
        }
    }
}

/// With the admin key, the tenants named in the bodies must exist (each looked up once).
/// `events` pairs each event with the prefix of its fields.
async fn check_tenants(
    state: &AppState,
    caller: &Caller,
    events: &[(String, NewEvent)],
) -> ApiResult<()> {
    if !matches!(caller, Caller::Admin) {
        return Ok(());
    }
    let mut known: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for (prefix, event) in events {
        let exists = match known.get(event.tenant_id.as_str()) {
            Some(&exists) => exists,
            None => {
                let exists = state.store.tenant(&event.tenant_id).await?.is_some();
                known.insert(&event.tenant_id, exists);
                exists
            }
        };
        if !exists {
            errors.push(FieldError::new(
                format!("{prefix}tenant_id"),
                "no such tenant",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
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
            body = super::openapi::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    RawJson(bytes): RawJson,
) -> ApiResult<(StatusCode, Json<AcceptedOut>)> {
    let body = raw_object(&bytes)?;
    let event = prepare(&caller, &body, Timestamp::now(), "")?;
    let events = [(String::new(), event)];
    check_tenants(&state, &caller, &events).await?;
    let [(_, event)] = events;
    let accepted = state.engine.ingest(event).await?;
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
            body = super::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "A tenant key named another tenant in a `tenant_id`.",
            body = super::openapi::Problem, content_type = "application/problem+json"),
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
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    let mut foreign = false;
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
        match prepare(&caller, &object, now, &prefix) {
            Ok(event) => events.push((prefix, event)),
            Err(Refusal::Fields(mut e)) => errors.append(&mut e),
            Err(Refusal::ForeignTenant) => foreign = true,
        }
    }
    // Every bad field at once first; a foreign tenant only once the bodies are well formed.
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if foreign {
        return Err(Refusal::ForeignTenant.into());
    }
    check_tenants(&state, &caller, &events).await?;
    let events = events.into_iter().map(|(_, event)| event).collect();
    let answers = state.engine.ingest_many(events).await;
    let data = answers
        .into_iter()
        .map(|a| a.map(AcceptedOut::from))
        .collect::<Result<Vec<_>, _>>()?;
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
    TenantId(tenant_id): TenantId,
    State(state): State<AppState>,
    PathId(event_id): PathId,
) -> ApiResult<Json<EventOut>> {
    if !id::is_valid(id::EVENT, &event_id) {
        return Err(ApiError::NotFound("event"));
    }
    let event = state
        .store
        .event(&tenant_id, &event_id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let data = stored_data(&event.body);
    Ok(Json(EventOut {
        id: event.id,
        event_type: event.event_type,
        tenant_id: event.tenant_id,
        created_at: event.created_at,
        idempotency_key: event.idempotency_key,
        data,
        deliveries: event
            .deliveries
            .into_iter()
            .map(|d| DeliveryOut {
                id: d.id,
                webhook_id: d.webhook_id,
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
