//! Ingest: `POST /events`, `POST /events/batch`, and `GET /events/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use super::AppState;
use super::auth::{Caller, TenantId};
use super::extract::{JsonObject, PathId};
use super::problem::{ApiError, ApiResult};
use crate::delivery::{Accepted, IngestError};
use crate::domain::delivery::DeliveryState;
use crate::domain::event::{EventInput, NewEvent};
use crate::domain::id;
use crate::domain::input::FieldError;
use crate::domain::time::Timestamp;

pub const MAX_BATCH: usize = 500;

#[derive(Serialize)]
pub struct AcceptedOut {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
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
    body: &Map<String, Value>,
    now: Timestamp,
    prefix: &str,
) -> Result<NewEvent, Vec<FieldError>> {
    let admin = matches!(caller, Caller::Admin);
    let input = EventInput::parse(body, admin).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| FieldError::new(format!("{prefix}{}", e.field), e.message))
            .collect::<Vec<_>>()
    })?;
    let tenant_id = match caller {
        Caller::Tenant(tenant_id) => tenant_id.clone(),
        // The admin's body must name the tenant: `parse` refused it otherwise.
        Caller::Admin => input.tenant_id.clone().unwrap_or_default(),
    };
    Ok(NewEvent::new(tenant_id, &input, now))
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

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<AcceptedOut>)> {
    let event = prepare(&caller, &body, Timestamp::now(), "").map_err(ApiError::Validation)?;
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

#[derive(Serialize)]
pub struct BatchOut {
    data: Vec<AcceptedOut>,
}

/// Up to 500 events; all are validated before any is stored, and each is then accepted as if
/// posted alone (idempotency keys included).
pub async fn create_batch(
    caller: Caller,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<BatchOut>)> {
    let unknown: Vec<FieldError> = body
        .keys()
        .filter(|k| *k != "events")
        .map(|k| FieldError::new(k.as_str(), "unknown field"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    let items = match body.get("events") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_BATCH => items,
        Some(Value::Array(_)) => {
            return Err(ApiError::field(
                "events",
                format!("must hold 1 to {MAX_BATCH} events"),
            ));
        }
        Some(_) => return Err(ApiError::field("events", "must be an array of events")),
        None => return Err(ApiError::field("events", "is required")),
    };
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("events[{i}].");
        let Value::Object(object) = item else {
            errors.push(FieldError::new(format!("events[{i}]"), "must be an object"));
            continue;
        };
        match prepare(&caller, object, now, &prefix) {
            Ok(event) => events.push((prefix, event)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
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

#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct EventOut {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    tenant_id: String,
    created_at: Timestamp,
    idempotency_key: Option<String>,
    data: Value,
    deliveries: Vec<DeliveryOut>,
}

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
    let data = serde_json::from_str::<Value>(&event.body)
        .ok()
        .and_then(|mut envelope| envelope.get_mut("data").map(Value::take))
        .unwrap_or(Value::Null);
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
