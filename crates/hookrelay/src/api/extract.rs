//! Request extractors that answer in our problem format: a JSON object body, path ids and list
//! parameters. Axum's own rejections are plain text; a client should never see one.
//!
//! Every JSON body is checked for a key given twice in one object (422 naming it): parsers
//! keep one of the two silently, so the server and a proxy or log reader could each see
//! another request.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};

use super::problem::ApiError;
use crate::domain::cursor::CursorKey;
use crate::domain::id::Id;
use crate::domain::input::FieldError;
use crate::domain::json::{self, RawObject};
use crate::store::Page;

/// A request body that is a JSON object, behind `Content-Type: application/json`.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        parse_object(&bytes).map(JsonObject)
    }
}

/// Like [`JsonObject`], but an empty body (with or without a content type) is `None`.
pub struct OptionalJsonObject(pub Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let OptionalRawJson(bytes) = OptionalRawJson::from_request(req, state).await?;
        let map = bytes.map(|bytes| parse_object(&bytes)).transpose()?;
        Ok(OptionalJsonObject(map))
    }
}

/// A JSON body kept as the bytes sent, for routes that pass part of it on untouched (events):
/// read it with [`raw_object`].
pub struct RawJson(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, bytes) = read_body(req, state).await?;
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(RawJson(bytes))
    }
}

/// Like [`RawJson`], but an empty body (with or without a content type) is `None`.
pub struct OptionalRawJson(pub Option<Bytes>);

impl<S: Send + Sync> FromRequest<S> for OptionalRawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, bytes) = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalRawJson(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        Ok(OptionalRawJson(Some(bytes)))
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
        Ok(Value::Object(map)) => {
            check_duplicates(bytes)?;
            Ok(map)
        }
        Ok(_) => Err(not_an_object()),
        Err(e) => Err(malformed(&e)),
    }
}

/// Reads a body that must be one JSON object, its members' values kept as sent.
pub fn raw_object(bytes: &[u8]) -> Result<RawObject<'_>, ApiError> {
    match RawObject::parse_slice(bytes) {
        Ok(object) => {
            check_duplicates(bytes)?;
            Ok(object)
        }
        // Well-formed JSON of another type (an array, a number).
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(not_an_object()),
        Err(e) => Err(malformed(&e)),
    }
}

/// A key given twice in one object, anywhere in the body: 422 naming its path.
fn check_duplicates(bytes: &[u8]) -> Result<(), ApiError> {
    match json::find_duplicate_key(bytes) {
        None => Ok(()),
        Some(dup) => Err(ApiError::field(
            dup.path,
            format!(
                "key {:?} is given twice in the same object; each key may appear once",
                dup.key
            ),
        )),
    }
}

fn not_an_object() -> ApiError {
    ApiError::BadRequest("the request body must be a JSON object".into())
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!(
        "malformed JSON at line {} column {}: {}",
        e.line(),
        e.column(),
        json_error_text(e)
    ))
}

/// serde_json's message without its own " at line X column Y" suffix (we say that ourselves).
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// One id in the path, parsed as its kind. A malformed id is simply not found (the same
/// answer as a missing one): its shape reveals nothing.
pub struct PathId<T>(pub T);

fn parse_id<T: Id>(text: &str) -> Result<T, ApiError> {
    T::parse(text).ok_or(ApiError::NotFound(T::WHAT))
}

impl<S: Send + Sync, T: Id> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound("resource"))?;
        parse_id(&text).map(PathId)
    }
}

/// A name in the path (`/event-types/{name}`); one that cannot be read is not found.
pub struct PathName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(text)| PathName(text))
            .map_err(|_| ApiError::NotFound("event type"))
    }
}

/// Two ids in the path (`/tenants/{id}/keys/{key_id}`), the outer first: it is answered
/// first when both are wrong.
pub struct PathIds<A, B>(pub A, pub B);

impl<S: Send + Sync, A: Id, B: Id> FromRequestParts<S> for PathIds<A, B> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((outer, inner)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound("resource"))?;
        Ok(PathIds(parse_id(&outer)?, parse_id(&inner)?))
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
    pub fn page(&self, scope: &ListScope, errors: &mut Vec<FieldError>) -> Result<Page, ApiError> {
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
                match scope.key.decode(raw, &scope.name) {
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

/// The list a page belongs to, and the key its cursors are signed with.
pub struct ListScope<'k> {
    key: &'k CursorKey,
    name: String,
}

/// The scope a list's cursors are bound to: which list (`kind`) of which owner, so a cursor
/// from a tenant's webhooks is not taken by the same tenant's keys. Cursors are signed
/// (`domain::cursor`): one this server did not issue for this list pages nothing.
pub fn list_scope<'k>(key: &'k CursorKey, kind: &str, owner: &str) -> ListScope<'k> {
    ListScope {
        key,
        name: format!("{kind}/{owner}"),
    }
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
    pub fn from_page(
        mut rows: Vec<T>,
        page: &Page,
        scope: &ListScope,
        id: impl Fn(&T) -> &str,
    ) -> Self {
        let wanted = page.limit.saturating_sub(1) as usize;
        let next_cursor = if rows.len() > wanted {
            rows.truncate(wanted);
            rows.last()
                .map(|last| scope.key.encode(&scope.name, id(last)))
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
    fn duplicate_keys_are_a_422_naming_the_path() {
        let err = parse_object(br#"{"name": "a", "headers": {"x": "1", "x": "2"}}"#).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected 422, got {err:?}")
        };
        assert_eq!(errors[0].field, "headers.x");
        assert!(errors[0].message.contains("\"x\""), "{}", errors[0].message);
        assert!(matches!(
            raw_object(br#"{"type": "a", "type": "b"}"#),
            Err(ApiError::Validation(_))
        ));
        // Malformed JSON is still a 400 saying where.
        assert!(
            matches!(raw_object(b"{\"a\": 1,,}"), Err(ApiError::BadRequest(d)) if d.contains("line 1"))
        );
        assert!(
            matches!(raw_object(b"[1]"), Err(ApiError::BadRequest(d)) if d.contains("must be a JSON object"))
        );
    }

    #[test]
    fn pages_verify_their_cursor_against_their_list() {
        let key = CursorKey::new(vec![[9; 32]]);
        let mine = list_scope(&key, "webhooks", "ten_a");
        let cursor = key.encode("webhooks/ten_a", "wh_01abc");
        let query = |c: &str| QueryParams(HashMap::from([("cursor".to_owned(), c.to_owned())]));
        let mut errors = Vec::new();
        let page = query(&cursor).page(&mine, &mut errors).unwrap();
        assert_eq!(page.before.as_deref(), Some("wh_01abc"));
        let theirs = list_scope(&key, "webhooks", "ten_b");
        assert!(matches!(
            query(&cursor).page(&theirs, &mut errors),
            Err(ApiError::NotFound(_))
        ));
        assert!(errors.is_empty());
        // Not of the documented shape: 422.
        let _ = query("not a cursor").page(&mine, &mut errors);
        assert_eq!(errors[0].field, "cursor");
    }
}
