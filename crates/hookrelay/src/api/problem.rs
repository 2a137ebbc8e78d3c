//! Every error the API returns, rendered as RFC 9457 `application/problem+json`.
//!
//! Each variant has a stable `type` URI and title that clients may match on; `detail` is for
//! people. Internal failures are logged here and answered with a generic text: database
//! messages and stack traces never reach a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::delivery::IngestError;
use crate::domain::input::FieldError;
use crate::service::ServiceError;
use crate::store::StoreError;

/// What made a 503: kept for the log, never shown to the client.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

const TYPE_BASE: &str = "https://hookrelay.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("this route needs the admin key")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route for this path")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("request body timed out")]
    RequestTimeout(std::time::Duration),
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// The request line and headers exceed `--max-header-bytes` (answered by the listener).
    #[error("request head larger than {0} bytes")]
    HeadersTooLarge(usize),
    #[error("request URI too long")]
    UriTooLong,
    /// The connection cap is reached (answered by the listener, which then closes).
    #[error("too many connections {0}")]
    TooManyConnections(&'static str),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("rate limit of {scope} exceeded")]
    RateLimited {
        /// What is limited, in words: "this API key", "this client address".
        scope: &'static str,
        retry_after: std::time::Duration,
    },
    /// A quota that waiting does not restore (`webhooks per tenant`), so no `Retry-After`.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The database cannot answer now, or the server is stopping: retry in a second.
    #[error("service unavailable")]
    Unavailable(#[source] Cause),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A validation failure on a single field.
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            NoRoute => (StatusCode::NOT_FOUND, "no-route", "No such route"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request header fields too large",
            ),
            UriTooLong => (StatusCode::URI_TOO_LONG, "uri-too-long", "URI too long"),
            TooManyConnections(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-connections",
                "Too many connections",
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            QuotaExceeded(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "quota-exceeded",
                "Quota exceeded",
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    fn detail(&self) -> String {
        use ApiError::*;
        match self {
            BadRequest(detail) => detail.clone(),
            Unauthorized(why) => format!("{why}; send Authorization: Bearer <api key>"),
            Forbidden => "this route needs the admin key; tenant keys cannot use it".into(),
            NotFound(what) => format!("{what} not found"),
            NoRoute => "no route matches this path; see /api/v1/openapi.json".into(),
            MethodNotAllowed => "this route does not accept this method".into(),
            Conflict(detail) => detail.clone(),
            PayloadTooLarge(limit) => {
                format!("the request body exceeds the limit of {limit} bytes")
            }
            RequestTimeout(limit) => format!(
                "the request body did not arrive within {} s (is Content-Length right?)",
                limit.as_secs()
            ),
            UnsupportedMediaType => {
                "send the body as JSON with Content-Type: application/json".into()
            }
            HeadersTooLarge(limit) => {
                format!("the request line and headers exceed the limit of {limit} bytes")
            }
            UriTooLong => "the request URI is too long".into(),
            TooManyConnections(scope) => format!("too many connections {scope}; retry in 1 s"),
            Validation(errors) if errors.len() == 1 => {
                format!("{}: {}", errors[0].field, errors[0].message)
            }
            Validation(errors) => format!("{} fields are invalid", errors.len()),
            RateLimited { scope, retry_after } => format!(
                "too many requests for {scope}; retry in {} s",
                retry_after_secs(*retry_after)
            ),
            QuotaExceeded(detail) => detail.clone(),
            Unavailable(_) => "the database is unavailable; retry shortly".into(),
            Internal(_) => "an internal error occurred; it has been logged".into(),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ApiError {
    fn problem(&self) -> Problem<'_> {
        let (status, slug, title) = self.parts();
        let errors = match self {
            ApiError::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        Problem {
            kind: format!("{TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail: self.detail(),
            errors,
        }
    }

    /// The status and problem body this error answers: the OpenAPI document's examples are
    /// made by this very code, so they cannot drift from the real answers.
    pub fn example(&self) -> (StatusCode, serde_json::Value) {
        let status = self.parts().0;
        (
            status,
            serde_json::to_value(self.problem()).unwrap_or_default(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.parts().0;
        match &self {
            ApiError::Internal(error) => tracing::error!(error = ?error, "internal error"),
            ApiError::Unavailable(cause) => {
                let why = chain(cause.as_ref());
                tracing::warn!(%why, "answering 503");
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) | ApiError::TooManyConnections(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_after, .. } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
            }
            _ => {}
        }
        response
    }
}

impl ApiError {
    /// This error as a whole HTTP/1.1 answer that ends the connection, for the listener to
    /// write itself where no handler runs: past the connection cap, or in place of hyper's
    /// bodiless answer to a head it could not parse. Status and headers are the handlers'
    /// answer's ([`IntoResponse`]), plus what the router and hyper would add.
    pub fn http1_closing(self) -> Vec<u8> {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let response = self.into_response();
        let status = response.status();
        let mut answer = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .into_bytes();
        for (name, value) in response.headers() {
            answer.extend_from_slice(name.as_str().as_bytes());
            answer.extend_from_slice(b": ");
            answer.extend_from_slice(value.as_bytes());
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(
            format!(
                "content-length: {}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        answer.extend_from_slice(&body);
        answer
    }
}

/// An error and its causes on one line; a cause whose text its parent already shows is not
/// repeated.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = cause.source();
    }
    text
}

/// Whole seconds to wait, rounded up and at least 1: `Retry-After: 0` invites a tight loop.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            error @ StoreError::Unavailable(_) => ApiError::Unavailable(Box::new(error)),
            StoreError::Conflict(what) => {
                tracing::debug!(%what, "unique constraint");
                ApiError::Conflict("a resource with this identity already exists".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// A database that cannot take the events, and a server that is stopping, are the same 503 to
/// the client (it sends them again, here or to another node); anything else is a bug.
impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Unavailable(_) | IngestError::ShuttingDown => {
                ApiError::Unavailable(Box::new(error))
            }
            IngestError::Store(_) => ApiError::Internal(error.into()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound(what) => ApiError::NotFound(what),
            ServiceError::Invalid(errors) => ApiError::Validation(errors),
            ServiceError::UnknownTenants(events) => ApiError::Validation(
                events
                    .iter()
                    .map(|_| FieldError::new("tenant_id", "no such tenant"))
                    .collect(),
            ),
            ServiceError::QuotaExceeded(detail) => ApiError::QuotaExceeded(detail),
            ServiceError::Conflict(detail) => ApiError::Conflict(detail),
            ServiceError::RateLimited { scope, retry_after } => {
                ApiError::RateLimited { scope, retry_after }
            }
            ServiceError::Unauthenticated(why) => ApiError::Unauthorized(why),
            ServiceError::Store(error) => error.into(),
            ServiceError::Ingest(error) => error.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&body).unwrap_or_default();
        (status, retry_after, body)
    }

    /// Store error → ingest error → service error → problem: each kind keeps its answer, and
    /// the database's own words stay in the chain for the log, never in the answer.
    #[tokio::test]
    async fn ingest_kinds_become_their_problems() {
        let unavailable = IngestError::from(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        assert!(matches!(unavailable, IngestError::Unavailable(_)));
        let error = ApiError::from(ServiceError::from(unavailable));
        let why = match &error {
            ApiError::Unavailable(cause) => chain(cause.as_ref()),
            other => panic!("expected a 503, got {other:?}"),
        };
        assert!(why.starts_with("database unavailable: "), "{why}");
        assert!(why.contains("pool timed out"), "{why}");
        let (status, retry_after, body) = answer(error).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["type"], "https://hookrelay.dev/problems/unavailable");
        assert_eq!(body["detail"], "the database is unavailable; retry shortly");

        let (status, retry_after, body) =
            answer(ServiceError::from(IngestError::ShuttingDown).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["detail"], "the database is unavailable; retry shortly");

        let corrupt = IngestError::from(StoreError::Corrupt("events.body".into()));
        assert!(matches!(corrupt, IngestError::Store(_)));
        let error = ApiError::from(ServiceError::from(corrupt));
        match &error {
            ApiError::Internal(e) => {
                let store = e.chain().find_map(|c| c.downcast_ref::<Arc<StoreError>>());
                assert!(matches!(
                    store.map(Arc::as_ref),
                    Some(StoreError::Corrupt(_))
                ));
            }
            other => panic!("expected a 500, got {other:?}"),
        }
        let (status, retry_after, body) = answer(error).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry_after, None);
        assert_eq!(
            body["detail"],
            "an internal error occurred; it has been logged"
        );
        assert!(!body.to_string().contains("events.body"));
    }

    #[test]
    fn a_cause_already_in_its_parents_text_is_not_repeated() {
        let error = StoreError::Unavailable(sqlx::Error::PoolTimedOut);
        let once = chain(&error);
        assert_eq!(once, error.to_string());
    }
}
