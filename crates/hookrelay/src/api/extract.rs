//! Request extractors that answer in our problem format: a JSON object body, path ids and list
//! parameters. Axum's own rejections are plain text; a client should never see one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

use super::problem::ApiError;
use crate::domain::input::FieldError;
use crate::store::Page;

/// A request body that is a JSON object, behind `Content-Type: application/json`.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, bytes) = read_body(req, state).await?;
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_object(&bytes).map(JsonObject)
    }
}

/// Like [`JsonObject`], but an empty body (with or without a content type) is `None`.
pub struct OptionalJsonObject(pub Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, bytes) = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonObject(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_object(&bytes).map(|map| OptionalJsonObject(Some(map)))
    }
}

/// The body within the route's limit, and whether it was declared as JSON.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<(bool, Bytes), ApiError> {
    let json = is_json(req.headers().get(header::CONTENT_TYPE));
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(usize::MAX, |l| l.0);
    let deadline = req
        .extensions()
        .get::<BodyTimeout>()
        .map_or(crate::config::DEFAULT_BODY_READ_TIMEOUT, |t| t.0);
    let bytes = tokio::time::timeout(deadline, Bytes::from_request(req, state))
        .await
        .map_err(|_| ApiError::RequestTimeout(deadline))?
        .map_err(|rejection| body_rejection(rejection, limit))?;
    Ok((json, bytes))
}

/// How long a body may take to arrive, made visible to extractors.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// The configured body limit, made visible to extractors so the 413 can state it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn body_rejection(rejection: BytesRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else {
        ApiError::BadRequest(format!("could not read the request body: {rejection}"))
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5]
                .to_ascii_lowercase()
                .starts_with("application/")
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// Parses a body that must be one JSON object, saying where it is broken when it is not.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "malformed JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            json_error_text(&e)
        ))),
    }
}

/// serde_json's message without its own " at line X column Y" suffix (we say that ourselves).
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// One path parameter. A malformed id is simply not found: its shape reveals nothing.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// Two path parameters (`/tenants/{id}/keys/{key_id}`).
pub struct PathIds(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|p| PathIds(p.0.0, p.0.1))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// The query string as plain pairs; each route reads what it knows. Unknown parameters are
/// ignored, as HTTP caches and proxies sometimes add their own.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))
    }
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

impl QueryParams {
    /// `limit` and `cursor`, as a page request one row longer than asked, so the handler can
    /// tell whether a next page exists without a count query. `scope` names the list (the
    /// tenant or webhook it belongs to).
    ///
    /// A cursor not of the documented shape is a 422 (recorded in `errors`). One of that shape
    /// this list did not issue (another tenant's, another webhook's log, or made up) is a 404:
    /// no page of this list starts there.
    pub fn page(&self, scope: &str, errors: &mut Vec<FieldError>) -> Result<Page, ApiError> {
        let limit = match self.0.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    ));
                    DEFAULT_LIMIT
                }
            },
        };
        let mut before = None;
        // `cursor=` with nothing is the first page, as if absent.
        if let Some(raw) = self.0.get("cursor").filter(|raw| !raw.is_empty()) {
            if !is_cursor_shaped(raw) {
                errors.push(FieldError::new(
                    "cursor",
                    "must be the next_cursor of an earlier page of this list",
                ));
            } else {
                match decode_cursor(raw, scope) {
                    Some(id) => before = Some(id),
                    None => return Err(ApiError::NotFound("page at this cursor in this list")),
                }
            }
        }
        Ok(Page {
            limit: limit + 1,
            before,
        })
    }

    /// An RFC 3339 timestamp parameter.
    pub fn time(
        &self,
        name: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<crate::domain::time::Timestamp> {
        let raw = self.0.get(name)?;
        let parsed = crate::domain::time::Timestamp::parse_rfc3339(raw);
        if parsed.is_none() {
            errors.push(FieldError::new(
                name,
                "must be an RFC 3339 timestamp, e.g. 2026-01-31T09:00:00Z",
            ));
        }
        parsed
    }

    pub fn bool(&self, name: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
        match self.0.get(name).map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                errors.push(FieldError::new(name, "must be true or false"));
                None
            }
        }
    }
}

/// Turns collected query errors into one 422.
pub fn check(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The shape every cursor has, as the OpenAPI document states it: `^[A-Za-z0-9_-]*$`, at most
/// `CURSOR_MAX` characters.
pub const CURSOR_MAX: usize = 512;

fn is_cursor_shaped(raw: &str) -> bool {
    raw.len() <= CURSOR_MAX
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The scope a list's cursors are bound to: which list (`kind`) of which owner, so a cursor
/// from a tenant's webhooks is not taken by the same tenant's keys.
pub fn list_scope(kind: &str, owner: &str) -> String {
    format!("{kind}/{owner}")
}

/// A cursor is the last id of a page, bound to its list's scope: `base64url(scope:id)`.
fn encode_cursor(scope: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{scope}:{id}"))
}

fn decode_cursor(raw: &str, scope: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (from, id) = text.split_once(':')?;
    if from != scope {
        return None;
    }
    let id = id.to_owned();
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plausible.then_some(id)
}

/// A page of results as every list answers: `{ "data": [...], "next_cursor": ... }`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
    /// Pass it back as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// Builds the answer from rows fetched with [`QueryParams::page`] (one extra row).
    pub fn from_page(mut rows: Vec<T>, page: &Page, scope: &str, id: impl Fn(&T) -> &str) -> Self {
        let wanted = page.limit.saturating_sub(1) as usize;
        let next_cursor = if rows.len() > wanted {
            rows.truncate(wanted);
            rows.last().map(|last| encode_cursor(scope, id(last)))
        } else {
            None
        };
        List {
            data: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        let ok = |v: &'static str| is_json(Some(&HeaderValue::from_static(v)));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!ok("+json"));
        assert!(!is_json(None));
    }

    #[test]
    fn malformed_json_says_where() {
        let err = parse_object(b"{\n  \"a\": 1,,\n}").unwrap_err();
        let ApiError::BadRequest(detail) = err else {
            panic!("expected 400, got {err:?}")
        };
        assert!(detail.contains("line 2 column"), "{detail}");
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{} trailing").is_err());
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let encoded = encode_cursor("ten_a", "wh_01abc");
        assert_eq!(
            decode_cursor(&encoded, "ten_a").as_deref(),
            Some("wh_01abc")
        );
        assert_eq!(decode_cursor("!!", "ten_a"), None);
        let injected = URL_SAFE_NO_PAD.encode("ten_a:' OR 1=1");
        assert_eq!(decode_cursor(&injected, "ten_a"), None);
        // A bare id (no scope) is not a cursor.
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("wh_01abc"), "ten_a"),
            None
        );
    }

    #[test]
    fn a_cursor_only_pages_its_own_list() {
        let theirs = encode_cursor("ten_a", "wh_01abc");
        assert_eq!(decode_cursor(&theirs, "ten_b"), None);
        assert_eq!(decode_cursor(&theirs, "ten_"), None);
        assert_eq!(decode_cursor(&theirs, ""), None);
    }
}
