//! Liveness and readiness, for load balancers and orchestrators. No authentication.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::problem::{ApiError, ApiResult};

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "service",
    responses((status = 200, description = "Alive.", body = Object,
        example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Debug, thiserror::Error)]
#[error("database ping timed out")]
struct PingTimedOut(#[source] tokio::time::error::Elapsed);

/// The database answers. A slow database counts as down: readiness must answer quickly.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "service",
    responses(
        (status = 200, description = "The database answers.", body = Object,
            example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer within 2 seconds; \
            `Retry-After: 1`.", body = super::schema::Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match tokio::time::timeout(Duration::from_secs(2), state.service.store().ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => Err(ApiError::Unavailable(Box::new(e))),
        Err(elapsed) => Err(ApiError::Unavailable(Box::new(PingTimedOut(elapsed)))),
    }
}
