//! `GET /metrics`: the Prometheus exposition, and the layer counting API requests by route.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::auth::Admin;
use super::problem::ApiError;
use crate::config::MetricsAccess;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The exposition. Open to anyone unless the operator asked for the admin key.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "service",
    description = "Prometheus text exposition (see docs/operations.md for every metric). Public \
        by default; with `--metrics admin` it takes the admin key (401 without, 403 with a \
        tenant key); with `--metrics off` it is not served.",
    responses(
        (status = 200, description = "The metrics, in the OpenMetrics text format (which \
            Prometheus reads).", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "`--metrics admin` and no admin key.",
            body = super::schema::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`--metrics admin` and a tenant key.",
            body = super::schema::Problem, content_type = "application/problem+json"),
    ))]
pub async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    // Only then is a key looked at: a public scrape that sends one neither reads the key
    // store nor spends that key's rate allowance.
    if state.metrics_access == MetricsAccess::Admin {
        Admin::from_request_parts(&mut parts, &state).await?;
    }
    let text = state
        .metrics
        .render(
            state.service.store().as_ref(),
            state.service.engine().in_flight(),
            state.service.engine().queued(),
        )
        .await;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts every answered request by method, matched route template (never the raw path,
/// whose ids would make every series unique) and status.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    // A cheap clone (the template is shared); the label copies it once.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.http_request(
        method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
    );
    response
}

/// Known methods by name; anything else as `other`, so callers cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
