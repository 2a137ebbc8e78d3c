//! The HTTP API: routing, authentication, extractors and problem answers. One module per
//! resource; handlers extract and parse the request, call the [`Service`], and render its
//! answer as JSON or a problem.

mod activity;
pub mod auth;
mod deliveries;
mod event_types;
mod events;
pub mod extract;
mod health;
pub mod limits;
mod metrics;
pub mod openapi;
mod operational;
pub mod problem;
mod schema;
mod tenants;
mod webhooks;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::service::Service;
use extract::{BodyLimit, BodyTimeout};
use problem::ApiError;

/// What every handler can reach: the use cases, and what is the API's own.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub limits: Arc<limits::RateLimits>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who may read `/metrics`.
    pub metrics_access: crate::config::MetricsAccess,
    /// Signs list cursors (derived from the operator keys: the same on every node).
    pub cursors: Arc<crate::domain::cursor::CursorKey>,
}

/// Request body limits.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Management API bodies.
    pub api: usize,
    /// One event, whichever route brings it: the body of `POST /events`, and each event of
    /// `POST /events/batch`.
    pub event: usize,
    /// A whole `POST /events/batch` body.
    pub batch: usize,
    /// How long any request body may take to arrive.
    pub read_timeout: std::time::Duration,
}

/// The whole HTTP surface.
pub fn router(state: AppState, limits: BodyLimits) -> Router {
    let event_limit = limits.event;
    let batch_limit = limits.batch;
    let v1 = Router::new()
        .route(
            "/events",
            post(events::create)
                .layer::<_, Infallible>(DefaultBodyLimit::max(event_limit))
                .layer::<_, Infallible>(axum::Extension(BodyLimit(event_limit))),
        )
        .route(
            "/events/batch",
            post(events::create_batch)
                .layer::<_, Infallible>(DefaultBodyLimit::max(batch_limit))
                .layer::<_, Infallible>(axum::Extension(BodyLimit(batch_limit)))
                .layer::<_, Infallible>(axum::Extension(events::EventLimit(event_limit))),
        )
        .route("/events/{id}", get(events::get))
        .route("/events/{id}/replay", post(deliveries::replay))
        .route(
            "/event-types",
            get(event_types::list).post(event_types::create),
        )
        .route(
            "/event-types/{name}",
            get(event_types::get).patch(event_types::update),
        )
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route("/tenants/{id}", get(tenants::get))
        .route(
            "/tenants/{id}/keys",
            get(tenants::list_keys).post(tenants::create_key),
        )
        .route(
            "/tenants/{id}/keys/{key_id}",
            axum::routing::delete(tenants::revoke_key),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/events", get(webhooks::events))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/secret", get(webhooks::get_secret))
        .route("/webhooks/{id}/headers", get(webhooks::get_headers))
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/enable", post(webhooks::enable))
        .route("/webhooks/{id}/disable", post(webhooks::disable))
        .route(
            "/operational-webhooks",
            get(operational::list).post(operational::create),
        )
        .route("/operational-webhooks/events", get(operational::events))
        .route(
            "/operational-webhooks/{id}",
            get(operational::get)
                .patch(operational::update)
                .delete(operational::delete),
        )
        .route(
            "/operational-webhooks/{id}/enable",
            post(operational::enable),
        )
        .route("/webhooks/{id}/test", post(activity::test))
        .route("/webhooks/{id}/logs", get(activity::logs))
        .route("/webhooks/{id}/logs/{log_id}", get(activity::log))
        .route("/webhooks/{id}/stats", get(activity::stats))
        .route("/webhooks/{id}/deliveries", get(deliveries::list))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}",
            get(deliveries::get),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(deliveries::retry),
        )
        .route("/webhooks/{id}/recover", post(deliveries::recover))
        .route("/webhooks/{id}/recoveries", get(deliveries::recoveries))
        .route(
            "/webhooks/{id}/recoveries/{recovery_id}",
            get(deliveries::recovery),
        )
        .route(
            "/webhooks/{id}/recoveries/{recovery_id}/cancel",
            post(deliveries::cancel),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::per_client,
        ))
        // The document is public and cheap: outside the per-client limit, like health checks.
        .route("/openapi.json", get(openapi::openapi_json));

    let mut root = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if state.metrics_access != crate::config::MetricsAccess::Off {
        root = root.route("/metrics", get(metrics::scrape));
    }
    let counted = state.metrics.clone();
    root.route(openapi::DOCS_PATH, get(openapi::docs_page))
        .route(openapi::BUNDLE_PATH, get(openapi::docs_bundle))
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.api))
        .layer(axum::Extension(BodyLimit(limits.api)))
        .layer(axum::middleware::from_fn_with_state(
            counted,
            metrics::count_requests,
        ))
        .layer(axum::Extension(BodyTimeout(limits.read_timeout)))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Name spans by route, not by raw path: ids would make every span unique.
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(axum::middleware::map_response(no_sniff))
}

/// Every answer is what its `Content-Type` says: browsers must not guess another type.
async fn no_sniff(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}
