//! Admin routes: the event-type registry. Tenants read the catalogue through
//! `GET /webhooks/events`; only the operator adds and changes types.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::auth::Admin;
use super::extract::{JsonObject, List, PathName};
use super::problem::{ApiError, ApiResult};
use super::schema::{EventTypeBody, EventTypePatchBody};
use crate::domain::catalog;
use crate::domain::registry::{EventTypePatch, NewEventType, RegisteredType};
use crate::domain::time::Timestamp;

/// One type of the registry.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RegisteredEventType)]
pub struct EventTypeOut {
    #[schema(value_type = super::schema::EventTypeName)]
    name: &'static str,
    /// The part before the dot: `message.*` subscribes to the whole group.
    group: String,
    description: String,
    /// The JSON Schema every event's `data` must satisfy; `null`: any object.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    /// An example `data` (what a test send sends by default).
    #[schema(value_type = Object)]
    sample: Value,
    /// Still accepted and delivered; tenants see it flagged.
    deprecated: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    deprecated_at: Option<Timestamp>,
    /// Shipped with hookrelay (seeded on first start).
    builtin: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<RegisteredType> for EventTypeOut {
    fn from(t: RegisteredType) -> Self {
        EventTypeOut {
            name: t.name,
            group: catalog::group(t.name).unwrap_or_default().to_owned(),
            builtin: t.builtin(),
            deprecated: t.deprecated(),
            description: t.description,
            schema: t.schema,
            sample: t.sample,
            deprecated_at: t.deprecated_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Add an event type.
#[utoipa::path(post, path = "/api/v1/event-types", operation_id = "create_event_type", tag = "event-types",
    request_body = EventTypeBody,
    responses(
        (status = 201, description = "The type, accepted from now on on every node.", body = EventTypeOut),
        (status = 409, description = "A type of that name exists (built-in ones included).",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    let new = NewEventType::parse(&body).map_err(ApiError::Validation)?;
    let created = state.service.create_event_type(new).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// List the registry: the built-in types in catalogue order, then the others as added.
#[utoipa::path(get, path = "/api/v1/event-types", operation_id = "list_registered_event_types", tag = "event-types",
    responses((status = 200, description = "Every registered type; one page.", body = List<EventTypeOut>)))]
pub async fn list(_: Admin, State(state): State<AppState>) -> Json<List<EventTypeOut>> {
    let data = state
        .service
        .event_types()
        .iter()
        .cloned()
        .map(EventTypeOut::from)
        .collect();
    Json(List {
        data,
        next_cursor: None,
    })
}

/// Get one event type.
#[utoipa::path(get, path = "/api/v1/event-types/{name}", operation_id = "get_event_type", tag = "event-types",
    params(("name" = String, Path, description = "The type's name, e.g. `invoice.paid`.")),
    responses((status = 200, description = "The type.", body = EventTypeOut)))]
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    PathName(name): PathName,
) -> ApiResult<Json<EventTypeOut>> {
    Ok(Json(state.service.event_type(&name)?.into()))
}

/// Change an event type: its description, schema, sample, or whether it is deprecated.
/// Types are never deleted (events and subscriptions name them): deprecate instead.
#[utoipa::path(patch, path = "/api/v1/event-types/{name}", operation_id = "update_event_type", tag = "event-types",
    params(("name" = String, Path, description = "The type's name, e.g. `invoice.paid`.")),
    request_body = EventTypePatchBody,
    responses((status = 200, description = "The type as it now stands.", body = EventTypeOut)))]
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    PathName(name): PathName,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<EventTypeOut>> {
    let patch = EventTypePatch::parse(&body).map_err(ApiError::Validation)?;
    let updated = state.service.update_event_type(&name, patch).await?;
    Ok(Json(updated.into()))
}
