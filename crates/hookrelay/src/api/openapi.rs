//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`) and the reference page that renders it
//! (`GET /docs/api`, with a Redoc bundle vendored in `vendor/redoc/` and embedded in the binary).
//!
//! Each handler carries its own `#[utoipa::path]`; this module gathers them, describes the
//! request bodies (handlers read bodies field by field, so those types exist for the document
//! only), and adds what every operation shares: the bearer scheme and the problem answers,
//! whose examples are rendered by [`ApiError`] itself.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::problem::ApiError;
use crate::domain::catalog::{self, CATALOG};
use crate::domain::delivery::DeliveryState;
use crate::domain::input::FieldError;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{MAX_ROTATION_GRACE, WebhookStatus};

pub const SPEC_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/docs/api";
pub const BUNDLE_PATH: &str = "/docs/api/redoc.standalone.js";

/// Operations anyone may call, without a key.
const PUBLIC: &[&str] = &["/healthz", "/readyz", SPEC_PATH, DOCS_PATH, BUNDLE_PATH];

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
        openapi_json,
        docs_page,
        docs_bundle,
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
        super::webhooks::rotate_secret,
        super::activity::test,
        super::activity::logs,
        super::activity::log,
        super::activity::stats,
        super::events::create,
        super::events::create_batch,
        super::events::get,
    ),
    components(schemas(Problem, EventType, Subscription)),
    tags(
        (name = "tenants", description = "Admin only: tenants and their API keys."),
        (name = "webhooks", description = "A tenant's webhooks and the event catalogue."),
        (name = "activity", description = "Attempt logs, statistics and test sends of a webhook."),
        (name = "events", description = "Events from the platform, and where their deliveries stand."),
        (name = "service", description = "Health, readiness and this document; no key needed."),
    ),
    modifiers(&Shared),
)]
pub struct ApiDoc;

/// The document, rendered once.
static SPEC: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the OpenAPI document: {e}\"}}"))
});

const DOCS_HTML: &str = include_str!("../../vendor/redoc/index.html");
const REDOC_BUNDLE: &[u8] = include_bytes!("../../vendor/redoc/redoc.standalone.js");

/// The OpenAPI 3.1 document describing this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document (this document).",
        content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    with_type(SPEC.as_str().to_owned(), "application/json")
}

/// The API reference, rendered in the browser from the OpenAPI document.
#[utoipa::path(get, path = "/docs/api", operation_id = "reference_page", tag = "service",
    responses((status = 200, description = "An HTML page rendering this document.",
        content_type = "text/html", body = String)))]
pub async fn docs_page() -> Response {
    with_type(DOCS_HTML, "text/html; charset=utf-8")
}

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

// ---- Schemas of the problem answer and of domain types the API shows as they are. ----

/// An RFC 9457 problem. Match on `type`; `detail` is for people.
#[derive(ToSchema)]
#[schema(examples(json!({
    "type": "https://hookrelay.dev/problems/not-found",
    "title": "Not found",
    "status": 404,
    "detail": "webhook not found"
})))]
#[allow(dead_code)]
pub(super) struct Problem {
    /// A stable URI naming the kind of problem: `https://hookrelay.dev/problems/` followed by
    /// `bad-request`, `unauthorized`, `forbidden`, `not-found`, `no-route`,
    /// `method-not-allowed`, `conflict`, `payload-too-large`, `unsupported-media-type`,
    /// `validation`, `unavailable` or `internal`.
    #[schema(rename = "type")]
    kind: String,
    /// A short summary of the kind, the same for every problem of that `type`.
    title: String,
    /// The HTTP status code.
    #[schema(minimum = 100, maximum = 599)]
    status: u16,
    /// What went wrong this time, for people.
    detail: String,
    /// Validation problems only: every offending field at once.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldErrorDoc>>,
}

/// One rejected field, named as the client spelled it (`url`, `events[2]`, `limit`).
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
struct FieldErrorDoc {
    #[schema(example = "url")]
    field: String,
    #[schema(example = "must use http or https")]
    message: String,
}

/// A tenant: an isolated customer account.
#[derive(ToSchema)]
#[schema(as = Tenant)]
#[allow(dead_code)]
struct TenantDoc {
    #[schema(example = "ten_01kb7r3ex4m1qzj3v4y8w9t6sa")]
    id: String,
    #[schema(example = "Acme Corp")]
    name: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A tenant API key as lists show it: never the key itself.
#[derive(ToSchema)]
#[schema(as = ApiKey)]
#[allow(dead_code)]
struct ApiKeyDoc {
    #[schema(example = "key_01kb7r5m2t0a7vq8s9k3c4d5e6")]
    id: String,
    tenant_id: String,
    name: Option<String>,
    /// `hr_<key id>`: tells keys apart without revealing them.
    prefix: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

/// `active` receives deliveries; `inactive` was switched off by its tenant.
#[derive(ToSchema)]
#[schema(as = WebhookStatus)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum WebhookStatusDoc {
    Active,
    Inactive,
}

/// Where one delivery stands; `cancelled` when its webhook was deleted first.
#[derive(ToSchema)]
#[schema(as = DeliveryState)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum DeliveryStateDoc {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

/// Gives a domain type the schema of its documentation twin, so handler types can name the
/// domain type while the domain stays free of HTTP concerns.
macro_rules! schema_of {
    ($ty:ty => $doc:ty) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                <$doc as PartialSchema>::schema()
            }
        }
        impl ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                <$doc as ToSchema>::name()
            }
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                <$doc as ToSchema>::schemas(out)
            }
        }
    };
}

schema_of!(FieldError => FieldErrorDoc);
schema_of!(Tenant => TenantDoc);
schema_of!(ApiKeyInfo => ApiKeyDoc);
schema_of!(WebhookStatus => WebhookStatusDoc);
schema_of!(DeliveryState => DeliveryStateDoc);

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, UTC, milliseconds."))
            .examples([json!("2026-01-31T09:00:00.000Z")])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// A name from the event catalogue (`GET /api/v1/webhooks/events`). The list is filled in
/// from the catalogue itself.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct EventType(String);

/// What a webhook subscribes to: a catalogue name, or `*` for every event type.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(super) struct Subscription(String);

// ---- Request bodies. Handlers read them field by field (every bad field reported at once,
// unknown fields refused), so these types describe them for the document only. ----

/// `POST /tenants`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Corp"}))]
#[allow(dead_code)]
pub struct NewTenantBody {
    /// 1–100 characters, no control characters; surrounding spaces are trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
}

/// `POST /tenants/{id}/keys`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production", "expires_at": "2099-01-01T00:00:00Z"}))]
#[allow(dead_code)]
pub struct NewApiKeyBody {
    /// A label to tell keys apart, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        nullable = false
    )]
    name: Option<String>,
    /// When the key stops working (RFC 3339, in the future); `null` or absent: never.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
}

/// Webhook URLs as the document states them: `http`/`https`, a host name, an optional port, then
/// a path or query of RFC 3986 characters. The server takes a little more than this (IP
/// literals, which the target policy then judges; up to 127 labels of up to 63 characters, 253
/// in all, where the pattern says 5 of up to 49 so that it stays within 253; a final dot),
/// and refuses every URL with a character outside RFC 3986, a host that is not a DNS name, a
/// fragment or credentials.
const URL_PATTERN: &str = r"^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9]([A-Za-z0-9-]{0,47}[A-Za-z0-9])?\.){0,4}[A-Za-z]([A-Za-z0-9-]{0,47}[A-Za-z0-9])?(:[1-9][0-9]{0,3})?([/?][A-Za-z0-9._~:/?\[\]@!$&'()*+,;=%-]*)?$";

struct WebhookUrl;

impl PartialSchema for WebhookUrl {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(crate::domain::webhook::URL_MAX))
            .pattern(Some(URL_PATTERN))
            .description(Some(
                "Absolute `http`/`https` URL with a host, no credentials, no fragment, at most \
                 2048 characters, only characters RFC 3986 allows (percent-encode others). \
                 Private, loopback and link-local targets are refused unless the operator \
                 allows them.",
            ))
            .examples([json!("https://example.com/hooks/hookrelay")])
            .into()
    }
}

impl ToSchema for WebhookUrl {}

/// `POST /webhooks`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "CRM sync",
    "url": "https://example.com/hooks/hookrelay",
    "events": ["message.sent", "message.delivered"],
    "retry_count": 3,
    "timeout_seconds": 30
}))]
#[allow(dead_code)]
pub struct NewWebhookBody {
    /// 1–100 characters, no control characters; surrounding spaces are trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// Up to 500 characters, no control characters; `null` or blank: none.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// At least one catalogue name, or `*`; duplicates are dropped.
    #[schema(min_items = 1)]
    events: Vec<Subscription>,
    /// `whsec_` + standard base64 of 24–64 bytes; generated (32 bytes) when absent.
    #[schema(
        nullable = false,
        pattern = r"^whsec_((?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
        example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )]
    secret: Option<String>,
    /// Retries after the first attempt (default 3).
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    retry_count: Option<i64>,
    /// Seconds an attempt may take (default 30).
    #[schema(nullable = false, minimum = 1, maximum = 60)]
    timeout_seconds: Option<i64>,
    /// `false` stops new deliveries (default `true`).
    #[schema(nullable = false)]
    is_active: Option<bool>,
}

/// `PATCH /webhooks/{id}`: any subset of the writable fields, with the same rules as on
/// create.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_active": false, "description": null}))]
#[allow(dead_code)]
pub struct WebhookPatchBody {
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// `null` or blank clears it.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    #[schema(nullable = false, value_type = Option<WebhookUrl>)]
    url: Option<String>,
    #[schema(nullable = false, min_items = 1)]
    events: Option<Vec<Subscription>>,
    #[schema(
        nullable = false,
        pattern = r"^whsec_((?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"
    )]
    secret: Option<String>,
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    retry_count: Option<i64>,
    #[schema(nullable = false, minimum = 1, maximum = 60)]
    timeout_seconds: Option<i64>,
    #[schema(nullable = false)]
    is_active: Option<bool>,
}

/// `POST /webhooks/{id}/rotate-secret`; the body may be empty.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_period": "24h"}))]
#[allow(dead_code)]
pub struct RotationBody {
    /// The new secret; generated when absent.
    #[schema(
        nullable = false,
        pattern = r"^whsec_((?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"
    )]
    secret: Option<String>,
    /// How long the old secret keeps signing beside the new one: seconds, or a duration such
    /// as `"24h"`; at most 7 days, default 24 hours.
    #[schema(nullable = false)]
    grace_period: Option<GracePeriod>,
}

/// Seconds (0 to 604800) or a duration such as `"24h"` (at most 7 days).
struct GracePeriod;

impl PartialSchema for GracePeriod {
    fn schema() -> RefOr<Schema> {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_ROTATION_GRACE.as_secs()));
        // The unit forms the server reads (humantime), bounded to 7 days in each unit.
        let duration = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                r"^(([0-9]{1,5}|[0-5][0-9]{5}|60[0-3][0-9]{3}|604[0-7][0-9]{2}|604800)s|([0-9]{1,4}|100[0-7][0-9]|10080)m|([0-9]{1,2}|1[0-5][0-9]|16[0-8])h|[0-7]d)$",
            ))
            .examples([json!("24h")]);
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(seconds)
            .item(duration)
            .description(Some(
                "Seconds (0 to 604800), or a duration in seconds, minutes, hours or days such as \
                 `\"24h\"` (at most 7 days).",
            ))
            .into()
    }
}

impl ToSchema for GracePeriod {}

/// `POST /webhooks/{id}/test`; the body may be empty.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "message.sent"}))]
#[allow(dead_code)]
pub struct TestBody {
    /// Default: the first type the webhook subscribes to.
    #[schema(nullable = false)]
    event_type: Option<EventType>,
    /// The event's `data`; default: the catalogue's sample for the type.
    #[schema(nullable = false, value_type = Option<Object>)]
    payload: Option<Value>,
}

/// `POST /events`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "type": "message.sent",
    "data": {"message_id": "msg_123", "to": "+15551234567"},
    "idempotency_key": "msg_123-sent"
}))]
#[allow(dead_code)]
pub struct NewEventBody {
    #[schema(rename = "type")]
    event_type: EventType,
    /// The event's payload, delivered as the envelope's `data`.
    #[schema(value_type = Object)]
    data: Value,
    /// A repeat within 24 hours answers the first event (200) instead of creating one;
    /// 1–255 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    idempotency_key: Option<String>,
    /// The tenant the event belongs to: required with the admin key. A tenant key's events
    /// belong to its own tenant: it may name it here, and naming any other answers 404.
    #[schema(nullable = false, pattern = "^ten_[0-9a-z]{26}$")]
    tenant_id: Option<String>,
}

/// `POST /events/batch`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewEventBatchBody {
    #[schema(min_items = 1, max_items = 500)]
    events: Vec<NewEventBody>,
}

// ---- What every operation shares. ----

struct Shared;

/// A problem answer that several operations share: its `components/responses` name, the
/// error it shows, and when it happens.
struct SharedProblem {
    name: &'static str,
    error: fn() -> ApiError,
    description: &'static str,
}

const PROBLEMS: &[SharedProblem] = &[
    SharedProblem {
        name: "BadRequest",
        error: || ApiError::BadRequest("malformed JSON at line 1 column 9: expected value".into()),
        description: "Malformed JSON, a body that is not an object, or a malformed query string.",
    },
    SharedProblem {
        name: "Unauthorized",
        error: || ApiError::Unauthorized("unknown API key"),
        description: "No key, a malformed `Authorization` header, or an unknown, revoked or \
            expired key. Comes with `WWW-Authenticate: Bearer`.",
    },
    SharedProblem {
        name: "Forbidden",
        error: || ApiError::Forbidden,
        description: "A tenant key on an admin route.",
    },
    SharedProblem {
        name: "NotFound",
        error: || ApiError::NotFound("webhook"),
        description: "No such object, or another tenant's (the same answer); with the admin \
            key, no tenant named by `X-Tenant-Id`.",
    },
    SharedProblem {
        name: "PayloadTooLarge",
        error: || ApiError::PayloadTooLarge(1_048_576),
        description: "The body exceeds the configured limit.",
    },
    SharedProblem {
        name: "UnsupportedMediaType",
        error: || ApiError::UnsupportedMediaType,
        description: "A body without `Content-Type: application/json`.",
    },
    SharedProblem {
        name: "Validation",
        error: || {
            ApiError::Validation(vec![
                FieldError::new("url", "must use http or https"),
                FieldError::new(
                    "events[0]",
                    "unknown event type \"message.nope\"; see GET /api/v1/webhooks/events",
                ),
            ])
        },
        description: "Field rules; `errors` names every bad field at once. With the admin key \
            on a tenant route, a missing `X-Tenant-Id`.",
    },
    SharedProblem {
        name: "Unavailable",
        error: || ApiError::Unavailable("database".into()),
        description: "The database cannot be reached in time. Comes with `Retry-After: 1`.",
    },
    SharedProblem {
        name: "Internal",
        error: || ApiError::Internal(anyhow::anyhow!("example")),
        description: "A bug; the detail is generic and the cause is logged.",
    },
];

fn problem_response(problem: &SharedProblem) -> utoipa::openapi::Response {
    let (_, example) = (problem.error)().example();
    let mut response = ResponseBuilder::new()
        .description(problem.description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .example(Some(example))
                .build(),
        );
    let header = |description: &str| {
        utoipa::openapi::HeaderBuilder::new()
            .schema(String::schema())
            .description(Some(description))
            .build()
    };
    match problem.name {
        "Unauthorized" => {
            response = response.header("WWW-Authenticate", header("Always `Bearer`."));
        }
        "Unavailable" => {
            response = response.header("Retry-After", header("Seconds to wait: `1`."));
        }
        _ => {}
    }
    response.build()
}

impl Modify for Shared {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin key, or a tenant key `hr_<key id>_<secret>`.",
                    ))
                    .build(),
            ),
        );
        for problem in PROBLEMS {
            components
                .responses
                .insert(problem.name.to_owned(), problem_response(problem).into());
        }
        let names = |wildcard: bool| {
            let mut names: Vec<Value> = CATALOG.iter().map(|t| json!(t.name)).collect();
            if wildcard {
                names.push(json!(catalog::WILDCARD));
            }
            names
        };
        for (schema, wildcard) in [("EventType", false), ("Subscription", true)] {
            let described = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names(wildcard)))
                .description(Some(if wildcard {
                    "A catalogue name, or `*` for every event type (present and future)."
                } else {
                    "A name from the event catalogue (`GET /api/v1/webhooks/events`)."
                }))
                .build();
            components
                .schemas
                .insert(schema.to_owned(), Schema::Object(described).into());
        }
        api.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for (path, item) in api.paths.paths.iter_mut() {
            let public = PUBLIC.contains(&path.as_str());
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                shared_answers(operation, public);
            }
        }
    }
}

/// Adds the problem answers an operation shares with others, from what it declares: a key
/// (401, 503, 500), a tenant header (404, 422), a body (400, 413, 415), a query (400), an admin
/// tag (403).
fn shared_answers(operation: &mut Operation, public: bool) {
    if public {
        // Explicitly no security requirement: the global bearer one does not apply.
        operation.security = Some(Vec::new());
        return;
    }
    if let Some(body) = &mut operation.request_body {
        for content in body.content.values_mut() {
            content.schema = content.schema.take().map(not_null);
        }
    }
    let params = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let tenant_scoped = params.iter().any(|p| p.name == "X-Tenant-Id");
    let admin = operation
        .tags
        .as_ref()
        .is_some_and(|tags| tags.iter().any(|t| t == "tenants"));
    let mut wanted = vec![
        ("401", "Unauthorized"),
        ("500", "Internal"),
        ("503", "Unavailable"),
    ];
    if operation.request_body.is_some() {
        wanted.extend([
            ("400", "BadRequest"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Validation"),
        ]);
    }
    if has(ParameterIn::Query) {
        wanted.extend([("400", "BadRequest"), ("422", "Validation")]);
    }
    if tenant_scoped {
        wanted.extend([("404", "NotFound"), ("422", "Validation")]);
    }
    if has(ParameterIn::Path) {
        wanted.push(("404", "NotFound"));
    }
    if admin {
        wanted.push(("403", "Forbidden"));
    }
    let responses = &mut operation.responses.responses;
    for (status, name) in wanted {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| Ref::new(format!("#/components/responses/{name}")).into());
    }
}

/// An optional body (`Option<T>` in a handler's `request_body`) may be absent, but when sent
/// it must be an object: `null` is not a body the handlers take.
fn not_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    if let RefOr::T(Schema::OneOf(one_of)) = &schema {
        let is_null = |item: &RefOr<Schema>| {
            matches!(item, RefOr::T(Schema::Object(o))
                if o.schema_type == utoipa::openapi::schema::SchemaType::Type(Type::Null))
        };
        if one_of.items.len() == 2
            && one_of.items.iter().any(is_null)
            && let Some(other) = one_of.items.iter().find(|item| !is_null(item))
        {
            return other.clone();
        }
    }
    schema
}

/// `X-Tenant-Id`, on tenant routes: required with the admin key, ignored with a tenant key.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct TenantHeader {
    /// With the admin key: the tenant to act on (`ten_…`). Ignored with a tenant key.
    #[param(
        rename = "X-Tenant-Id",
        nullable = false,
        example = "ten_01kb7r3ex4m1qzj3v4y8w9t6sa"
    )]
    x_tenant_id: Option<String>,
}

/// `limit` and `cursor`, on every list.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// How many rows, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (the id of its last row).
    #[param(pattern = "^[a-z]{2,3}_[0-9a-z]{26}$")]
    cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
