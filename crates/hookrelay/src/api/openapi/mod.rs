//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`) and the reference page that renders it
//! (`GET /docs/api`, with a Redoc bundle vendored in `vendor/redoc/` and embedded in the binary).
//!
//! Each handler carries its own `#[utoipa::path]`, naming the types of `api::schema`; this
//! module gathers them and adds what every operation shares (`shared`): the bearer scheme and
//! the problem answers, whose examples are rendered by [`ApiError`] itself.
//!
//! [`ApiError`]: crate::api::problem::ApiError

mod shared;

use super::schema::{EventType, OperationalSubscription, Problem, Subscription};
use shared::Common;

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;

use super::AppState;
use crate::domain::registry::EventTypes;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

pub const SPEC_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/docs/api";
pub const BUNDLE_PATH: &str = "/docs/api/redoc.standalone.js";

/// Operations anyone may call, without a key.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    SPEC_PATH,
    DOCS_PATH,
    BUNDLE_PATH,
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookrelay",
        description = "Self-hosted webhook delivery: signed, retried, logged, counted.\n\n\
            Every `/api/v1` route takes `Authorization: Bearer <key>`: the **admin key** (the \
            operator) or a **tenant key** (`hr_<key id>_<secret>`). Tenant routes act on the \
            key's tenant; the admin key names the tenant in `X-Tenant-Id` (or, for events, in \
            the body's `tenant_id`). Another tenant's objects answer 404, exactly as missing \
            ones do.\n\n\
            Every error is an RFC 9457 problem (`application/problem+json`) with a stable \
            `type`; validation problems list every offending field in `errors`. Lists take \
            `limit` (1–200, default 50) and `cursor`, and answer `{\"data\": [...], \
            \"next_cursor\": ...}`, newest first.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::metrics::scrape,
        openapi_json,
        docs_page,
        docs_bundle,
        super::event_types::create,
        super::event_types::list,
        super::event_types::get,
        super::event_types::update,
        super::tenants::create,
        super::tenants::list,
        super::tenants::get,
        super::tenants::create_key,
        super::tenants::list_keys,
        super::tenants::revoke_key,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::events,
        super::webhooks::get,
        super::webhooks::update,
        super::webhooks::delete,
        super::webhooks::get_secret,
        super::webhooks::get_headers,
        super::webhooks::rotate_secret,
        super::webhooks::enable,
        super::webhooks::disable,
        super::operational::create,
        super::operational::list,
        super::operational::events,
        super::operational::get,
        super::operational::update,
        super::operational::delete,
        super::operational::enable,
        super::activity::test,
        super::activity::logs,
        super::activity::log,
        super::activity::stats,
        super::deliveries::list,
        super::deliveries::get,
        super::deliveries::retry,
        super::deliveries::recover,
        super::deliveries::recoveries,
        super::deliveries::recovery,
        super::deliveries::cancel,
        super::deliveries::replay,
        super::events::create,
        super::events::create_batch,
        super::events::get,
    ),
    components(schemas(Problem, EventType, Subscription, OperationalSubscription)),
    tags(
        (name = "tenants", description = "Admin only: tenants and their API keys."),
        (name = "event-types", description = "Admin only: the event-type registry. Tenants read it as the catalogue (`GET /api/v1/webhooks/events`)."),
        (name = "webhooks", description = "A tenant's webhooks and the event catalogue."),
        (name = "activity", description = "Attempt logs, statistics, test sends, deliveries, retries and recoveries of a webhook."),
        (name = "events", description = "Events from the platform, and where their deliveries stand."),
        (name = "operational", description = "Admin only: operational webhooks, the operator's endpoints for hookrelay's own events (webhook.failing, webhook.disabled, webhook.recovered, delivery.exhausted, recovery.completed)."),
        (name = "service", description = "Health, readiness and this document; no key needed."),
    ),
    modifiers(&Common),
)]
pub struct ApiDoc;

/// The document as built, with the built-in catalogue (what `docs/openapi.json` holds).
static SPEC: LazyLock<String> = LazyLock::new(|| {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(doc) => doc,
        Err(e) => return format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"),
    };
    // A recovery window may reach back only the retention age, so a fixed date would stop
    // being a valid example: the example starts an hour before the document was rendered.
    if let Some(since) = doc.pointer_mut("/components/schemas/RecoverBody/example/since") {
        let hour_ago = crate::domain::time::Timestamp::now().plus_millis(-3_600_000);
        *since = serde_json::Value::String(hour_ago.to_rfc3339());
    }
    state_retry_exclusivity(&mut doc);
    state_filter_rules(&mut doc);
    serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"))
});

/// The bodies that take both `retry_count` and `retry_schedule`.
const RETRY_BODIES: [&str; 4] = [
    "NewWebhookBody",
    "WebhookPatchBody",
    "OperationalWebhookBody",
    "OperationalWebhookPatchBody",
];

/// A count and a schedule (other than `null`) in one body are refused; JSON Schema can say so
/// and utoipa's derive cannot, so the rule is added to the rendered document. Without it the
/// document calls such a body valid and clients (and schemathesis) believe it.
fn state_retry_exclusivity(doc: &mut serde_json::Value) {
    for body in RETRY_BODIES {
        let pointer = format!("/components/schemas/{body}");
        if let Some(schema) = doc.pointer_mut(&pointer).and_then(|s| s.as_object_mut()) {
            schema.insert(
                "not".to_owned(),
                serde_json::json!({
                    "required": ["retry_count", "retry_schedule"],
                    "properties": {"retry_schedule": {"not": {"type": "null"}}}
                }),
            );
        }
    }
}

/// Completes the `PayloadFilter` component and adds the two it refers to.
fn state_filter_rules(doc: &mut serde_json::Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    for (name, rules) in crate::api::schema::filter_rules() {
        let schema = schemas.entry(name).or_insert_with(|| serde_json::json!({}));
        if let (Some(schema), serde_json::Value::Object(rules)) = (schema.as_object_mut(), rules) {
            schema.extend(rules);
        }
    }
}

const DOCS_HTML: &str = include_str!("../../../vendor/redoc/index.html");
const REDOC_BUNDLE: &[u8] = include_bytes!("../../../vendor/redoc/redoc.standalone.js");

/// The OpenAPI 3.1 document describing this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document (this document).",
        content_type = "application/json", body = Object)))]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    with_type(live(&state.service.event_types()), "application/json")
}

/// The document with the registry as it stands: `EventType` and `Subscription` list the
/// types registered now, so clients and testers that read the document see a type the
/// moment it is added. Rendered again only when the registry changed.
fn live(types: &Arc<EventTypes>) -> Bytes {
    static RENDERED: Mutex<Option<(Arc<EventTypes>, Bytes)>> = Mutex::new(None);
    let mut rendered = RENDERED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((of, bytes)) = rendered.as_ref()
        && Arc::ptr_eq(of, types)
    {
        return bytes.clone();
    }
    let bytes = match serde_json::from_str::<serde_json::Value>(&SPEC) {
        Ok(mut doc) => {
            let names: Vec<serde_json::Value> = types.iter().map(|t| t.name.into()).collect();
            let subscribable: Vec<serde_json::Value> =
                types.subscribable().into_iter().map(Into::into).collect();
            for (schema, values) in [("EventType", names), ("Subscription", subscribable)] {
                if let Some(slot) = doc.pointer_mut(&format!("/components/schemas/{schema}/enum")) {
                    *slot = serde_json::Value::Array(values);
                }
            }
            Bytes::from(serde_json::to_string_pretty(&doc).unwrap_or_else(|_| SPEC.clone()))
        }
        Err(_) => Bytes::from(SPEC.clone()),
    };
    *rendered = Some((Arc::clone(types), bytes.clone()));
    bytes
}

/// The API reference, rendered in the browser from the OpenAPI document.
#[utoipa::path(get, path = "/docs/api", operation_id = "reference_page", tag = "service",
    responses((status = 200, description = "An HTML page rendering this document.",
        content_type = "text/html", body = String)))]
pub async fn docs_page() -> Response {
    let mut response = with_type(DOCS_HTML, "text/html; charset=utf-8");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// What the reference page may load: its own script and document, styles (Redoc's styled
/// components write them inline), images and fonts from itself or inlined as data, and its
/// search worker, which Redoc starts from a blob. Nothing from anywhere else; no framing, no
/// forms, no other base URL, no eval.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The Redoc bundle the reference page loads (vendored; no CDN).
#[utoipa::path(get, path = "/docs/api/redoc.standalone.js", operation_id = "reference_bundle", tag = "service",
    responses((status = 200, description = "The JavaScript bundle of the reference page.",
        content_type = "text/javascript", body = String)))]
pub async fn docs_bundle() -> Response {
    let mut response = with_type(REDOC_BUNDLE, "text/javascript; charset=utf-8");
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::shared::PROBLEMS;
    use super::*;
    use crate::api::problem::ApiError;
    use crate::domain::catalog::CATALOG;
    use serde_json::{Value, json};

    /// One of each error, and a match that stops compiling when a variant is added without
    /// being listed here.
    fn every_error() -> Vec<ApiError> {
        use std::time::Duration;
        let all = vec![
            ApiError::BadRequest(String::new()),
            ApiError::Unauthorized(""),
            ApiError::Forbidden,
            ApiError::NotFound(""),
            ApiError::NoRoute,
            ApiError::MethodNotAllowed,
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge(1),
            ApiError::RequestTimeout(Duration::from_secs(1)),
            ApiError::UnsupportedMediaType,
            ApiError::HeadersTooLarge(8192),
            ApiError::UriTooLong,
            ApiError::TooManyConnections(""),
            ApiError::Validation(Vec::new()),
            ApiError::RateLimited {
                scope: "",
                retry_after: Duration::from_secs(1),
            },
            ApiError::QuotaExceeded(String::new()),
            ApiError::Unavailable("x".into()),
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for error in &all {
            match error {
                ApiError::BadRequest(_)
                | ApiError::Unauthorized(_)
                | ApiError::Forbidden
                | ApiError::NotFound(_)
                | ApiError::NoRoute
                | ApiError::MethodNotAllowed
                | ApiError::Conflict(_)
                | ApiError::PayloadTooLarge(_)
                | ApiError::RequestTimeout(_)
                | ApiError::UnsupportedMediaType
                | ApiError::HeadersTooLarge(_)
                | ApiError::UriTooLong
                | ApiError::TooManyConnections(_)
                | ApiError::Validation(_)
                | ApiError::RateLimited { .. }
                | ApiError::QuotaExceeded(_)
                | ApiError::Unavailable(_)
                | ApiError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_document_names_every_problem_type() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        let described =
            doc["components"]["schemas"]["Problem"]["properties"]["type"]["description"]
                .as_str()
                .unwrap_or_default();
        for error in every_error() {
            let (_, example) = error.example();
            let kind = example["type"].as_str().unwrap_or_default();
            let slug = kind.rsplit('/').next().unwrap_or_default();
            assert!(
                described.contains(&format!("`{slug}`")),
                "the Problem schema does not name {slug}: {described}"
            );
        }
    }

    #[test]
    fn document_is_openapi_3_1_with_every_problem() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for problem in PROBLEMS {
            let example = &doc["components"]["responses"][problem.name]["content"]["application/problem+json"]
                ["example"];
            assert!(
                example["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://hookrelay.dev/problems/"),
                "{}: {example}",
                problem.name
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
            }
        }
        assert!(ids.len() >= 25);
    }

    #[test]
    fn catalogue_enum_matches_the_catalogue() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        let names = doc["components"]["schemas"]["EventType"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(names.len(), CATALOG.len());
        assert_eq!(names[0], json!(CATALOG[0].name), "catalogue order is kept");
    }

    #[test]
    fn a_count_and_a_schedule_are_exclusive_in_the_document() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        for body in super::RETRY_BODIES {
            let schema = &doc["components"]["schemas"][body];
            assert!(
                !schema["properties"]["retry_schedule"].is_null(),
                "{body} documents retry_schedule"
            );
            assert_eq!(
                schema["not"]["required"],
                json!(["retry_count", "retry_schedule"]),
                "{body}"
            );
        }
    }

    /// Whether `schema` takes JSON `null`, through `$ref`s and combinators.
    fn takes_null(doc: &Value, schema: &Value) -> bool {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.rsplit('/').next().unwrap_or_default();
            return takes_null(doc, &doc["components"]["schemas"][name]);
        }
        let typed = match &schema["type"] {
            Value::String(t) => t == "null",
            Value::Array(types) => types.iter().any(|t| t == "null"),
            _ => false,
        };
        let any = ["oneOf", "anyOf"].iter().any(|key| {
            schema[*key]
                .as_array()
                .is_some_and(|items| items.iter().any(|s| takes_null(doc, s)))
        });
        typed || any
    }

    /// Every `oneOf` in the document, with where it is.
    fn one_ofs<'a>(at: String, value: &'a Value, into: &mut Vec<(String, &'a Vec<Value>)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if key == "oneOf"
                        && let Value::Array(items) = inner
                    {
                        into.push((at.clone(), items));
                    }
                    one_ofs(format!("{at}/{key}"), inner, into);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    one_ofs(format!("{at}/{i}"), inner, into);
                }
            }
            _ => {}
        }
    }

    /// `oneOf` means exactly one branch: if two take `null`, a `null` the server accepts is
    /// invalid by the document (a nullable wrapper around a schema that is nullable itself).
    #[test]
    fn null_matches_at_most_one_branch_of_any_one_of() {
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        let mut found = Vec::new();
        one_ofs(String::new(), &doc, &mut found);
        assert!(found.len() > 10, "the walk sees the document's oneOfs");
        for (at, items) in found {
            let nullable = items.iter().filter(|s| takes_null(&doc, s)).count();
            assert!(
                nullable <= 1,
                "{at}: {nullable} branches of a oneOf take null"
            );
        }
    }

    /// The bounds a property states, through `$ref`s and `oneOf`/`allOf` wrappers.
    fn bounds(doc: &Value, schema: &Value, into: &mut serde_json::Map<String, Value>) {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.rsplit('/').next().unwrap_or_default();
            bounds(doc, &doc["components"]["schemas"][name], into);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for inner in schema[key].as_array().into_iter().flatten() {
                bounds(doc, inner, into);
            }
        }
        let keys = [
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "pattern",
            "minItems",
        ];
        for key in keys.into_iter().chain(["maxItems"]) {
            if let Some(v) = schema.get(key) {
                into.insert(key.to_owned(), v.clone());
            }
        }
    }

    #[test]
    fn request_bodies_state_the_domain_limits() {
        use crate::domain::{event, input, secret, webhook};
        let doc: Value = serde_json::from_str(&SPEC).unwrap();
        let name =
            json!({"minLength": 1, "maxLength": input::NAME_MAX, "pattern": input::NAME_PATTERN});
        let secret = json!({"pattern": secret::PATTERN});
        let retry = json!({"minimum": 0, "maximum": webhook::RETRY_COUNT_MAX});
        let timeout = json!({"minimum": webhook::TIMEOUT_MIN, "maximum": webhook::TIMEOUT_MAX});
        let schedule = json!({"minItems": 1, "maxItems": crate::domain::retry::RETRY_SCHEDULE_MAX});
        let rate = json!({"minimum": 1, "maximum": webhook::RATE_LIMIT_MAX});
        let description = json!({
            "maxLength": webhook::DESCRIPTION_MAX,
            "pattern": input::FREE_TEXT_PATTERN
        });
        let expected = [
            ("NewTenantBody", "name", name.clone()),
            ("NewApiKeyBody", "name", name.clone()),
            ("NewWebhookBody", "name", name.clone()),
            ("WebhookPatchBody", "name", name),
            ("NewWebhookBody", "description", description.clone()),
            ("WebhookPatchBody", "description", description),
            ("NewWebhookBody", "secret", secret.clone()),
            ("WebhookPatchBody", "secret", secret.clone()),
            ("RotationBody", "secret", secret),
            ("NewWebhookBody", "retry_count", retry.clone()),
            ("WebhookPatchBody", "retry_count", retry),
            ("NewWebhookBody", "retry_schedule", schedule.clone()),
            ("WebhookPatchBody", "retry_schedule", schedule.clone()),
            ("OperationalWebhookBody", "retry_schedule", schedule.clone()),
            ("OperationalWebhookPatchBody", "retry_schedule", schedule),
            (
                "Webhook",
                "retry_count",
                json!({"minimum": 0, "maximum": crate::domain::retry::RETRY_SCHEDULE_MAX}),
            ),
            ("NewWebhookBody", "timeout_seconds", timeout.clone()),
            ("WebhookPatchBody", "timeout_seconds", timeout),
            ("NewWebhookBody", "rate_limit_per_second", rate.clone()),
            ("WebhookPatchBody", "rate_limit_per_second", rate),
            (
                "NewWebhookBody",
                "url",
                json!({"maxLength": webhook::URL_MAX}),
            ),
            (
                "NewEventBody",
                "idempotency_key",
                json!({
                    "minLength": 1,
                    "maxLength": event::IDEMPOTENCY_KEY_MAX,
                    "pattern": event::IDEMPOTENCY_KEY_PATTERN
                }),
            ),
            (
                "NewEventBatchBody",
                "events",
                json!({"minItems": 1, "maxItems": event::BATCH_MAX}),
            ),
        ];
        for (body, property, want) in expected {
            let schema = &doc["components"]["schemas"][body]["properties"][property];
            assert!(
                !schema.is_null(),
                "{body}.{property} is not in the document"
            );
            let mut stated = serde_json::Map::new();
            bounds(&doc, schema, &mut stated);
            for (key, value) in want.as_object().unwrap() {
                assert_eq!(stated.get(key), Some(value), "{body}.{property}: {key}");
            }
        }
    }
}
