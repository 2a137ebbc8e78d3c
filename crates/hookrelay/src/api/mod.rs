//! The HTTP API: routing, authentication, extractors and problem answers. One module per
//! resource; handlers parse with the domain, act through the store, and answer JSON.

pub mod auth;
pub mod extract;
mod health;
pub mod problem;
mod tenants;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::store::Store;
use extract::BodyLimit;
use problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// SHA-256 of the admin key (configured or generated); the key itself is not kept.
    pub admin_key_hash: Arc<[u8; 32]>,
}

/// The whole HTTP surface.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let v1 = Router::new()
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
        .route("/webhooks/{id}/secret", get(webhooks::get_secret));

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(BodyLimit(body_limit)))
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
}
