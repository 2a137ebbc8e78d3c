//! Request bodies, described for the document.

use serde_json::{Value, json};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::webhook::MAX_ROTATION_GRACE;

use super::schemas::{EventType, Subscription};

// ---- Request bodies. Handlers read them field by field (every bad field reported at once,
// unknown fields refused), so these types describe them for the document only. ----

/// `POST /tenants`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Corp"}))]
#[allow(dead_code)]
pub struct NewTenantBody {
    /// 1–100 characters, no control or bidirectional control characters, at least one visible;
    /// surrounding spaces are trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: String,
}

/// `POST /tenants/{id}/keys`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production", "expires_at": "2099-01-01T00:00:00Z"}))]
#[allow(dead_code)]
pub struct NewApiKeyBody {
    /// A label to tell keys apart, 1–100 characters, at least one visible, no control or
    /// bidirectional control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$",
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

/// `headers` on a webhook: what the document can state of the rules in `domain::headers`.
/// Reserved names (`Host`, `Content-Length`, `webhook-*`, `x-hookrelay-*`, …) are refused too,
/// which a schema cannot say without lookaheads; the description lists them.
struct CustomHeaders;

impl PartialSchema for CustomHeaders {
    fn schema() -> RefOr<Schema> {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(crate::domain::headers::HEADER_NAME_MAX))
            .pattern(Some(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"));
        // Visible ASCII, inner spaces and tabs: never CR, LF or NUL.
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(crate::domain::headers::HEADER_VALUE_MAX))
            .pattern(Some(r"^([!-~]([ \t]*[!-~])*)?$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(name))
            .additional_properties(Some(value))
            .max_properties(Some(crate::domain::headers::HEADERS_MAX_COUNT))
            .description(Some(
                "Extra headers sent with every delivery: at most 16, names up to 64 characters, \
                 values up to 1024, and at most 4 KiB in all (`name: value` lines). Names are HTTP tokens, case-insensitive and stored lowercase; values \
                 are printable ASCII. `Host`, `Content-Length`, `Transfer-Encoding`, \
                 `Connection`, `Keep-Alive`, `Upgrade`, `TE`, `Trailer`, `Expect`, \
                 `Content-Type`, `Content-Encoding`, `User-Agent`, `proxy-*`, `webhook-*` and \
                 `x-hookrelay-*` are refused. Values are sealed at rest and shown as `***` in \
                 attempt logs. On update the whole set is replaced; `{}` or `null` removes it.",
            ))
            .examples([json!({"Authorization": "Bearer 3f9a…", "X-Team": "crm"})])
            .into()
    }
}

impl ToSchema for CustomHeaders {}

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
    /// 1–100 characters, no control or bidirectional control characters, at least one visible;
    /// surrounding spaces are trimmed.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: String,
    /// Up to 500 characters, no control or bidirectional control characters; `null` or blank
    /// (nothing visible): none.
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
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
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// Deliveries per second at most, on each node (1–10000); `null` for no limit.
    /// Deliveries over it wait; none is dropped.
    #[schema(minimum = 1, maximum = 10000)]
    rate_limit_per_second: Option<i64>,
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
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: Option<String>,
    /// `null` or blank clears it.
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"
    )]
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
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// Deliveries per second at most, on each node (1–10000); `null` for no limit.
    /// Deliveries over it wait; none is dropped.
    #[schema(minimum = 1, maximum = 10000)]
    rate_limit_per_second: Option<i64>,
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
