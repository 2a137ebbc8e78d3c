//! Liveness and readiness, for load balancers and orchestrators. No authentication.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::AppState;
use super::problem::{ApiError, ApiResult};

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers. A slow database counts as down: readiness must answer quickly.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => Err(ApiError::Unavailable(e.to_string())),
        Err(_) => Err(ApiError::Unavailable("database ping timed out".into())),
    }
}
