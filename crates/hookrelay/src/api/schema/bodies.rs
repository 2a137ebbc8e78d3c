//! Request bodies, described for the document.

use serde_json::{Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::time::Timestamp;
use crate::domain::webhook::MAX_ROTATION_GRACE;
use crate::domain::{event, headers};

use super::fields::{
    Description, EventTypeName, IdempotencyKey, Name, PayloadFilter, RateLimit, RetryCount,
    RetrySchedule, Secret, TenantRef, TimeoutSeconds, TypeDescription,
};
use super::types::{EventType, OperationalSubscription, Subscription};

// ---- Request bodies. Handlers read them field by field (every bad field reported at once,
// unknown fields refused), so these types describe them for the document only. ----

/// `POST /tenants`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Corp"}))]
#[allow(dead_code)]
pub struct NewTenantBody {
    #[schema(value_type = Name)]
    name: String,
}

/// `POST /tenants/{id}/keys`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production", "expires_at": "2099-01-01T00:00:00Z"}))]
#[allow(dead_code)]
pub struct NewApiKeyBody {
    /// A label to tell keys apart.
    #[schema(nullable = false, value_type = Option<Name>)]
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
            .description(Some(format!(
                "Absolute `http`/`https` URL with a host, no credentials, no fragment, at most \
                 {} characters, only characters RFC 3986 allows (percent-encode others). \
                 Private, loopback and link-local targets are refused unless the operator \
                 allows them.",
                crate::domain::webhook::URL_MAX
            )))
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
            .max_length(Some(headers::HEADER_NAME_MAX))
            .pattern(Some(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"));
        // Visible ASCII, inner spaces and tabs: never CR, LF or NUL.
        let value = ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(headers::HEADER_VALUE_MAX))
            .pattern(Some(r"^([!-~]([ \t]*[!-~])*)?$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(name))
            .additional_properties(Some(value))
            .max_properties(Some(headers::HEADERS_MAX_COUNT))
            .description(Some(format!(
                "Extra headers sent with every delivery: at most {}, names up to {} characters, \
                 values up to {}, and at most {} bytes in all (`name: value` lines). Names are HTTP tokens, case-insensitive and stored lowercase; values \
                 are printable ASCII. `Host`, `Content-Length`, `Transfer-Encoding`, \
                 `Connection`, `Keep-Alive`, `Upgrade`, `TE`, `Trailer`, `Expect`, \
                 `Content-Type`, `Content-Encoding`, `User-Agent`, `proxy-*`, `webhook-*` and \
                 `x-hookrelay-*` are refused. Values are sealed at rest and shown as `***` in \
                 attempt logs. On update the whole set is replaced; `{{}}` or `null` removes it.",
                headers::HEADERS_MAX_COUNT,
                headers::HEADER_NAME_MAX,
                headers::HEADER_VALUE_MAX,
                headers::HEADERS_MAX_BYTES
            )))
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
    #[schema(value_type = Name)]
    name: String,
    /// `null` or blank: none.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// At least one catalogue name, or `*`; duplicates are dropped.
    #[schema(min_items = 1)]
    events: Vec<Subscription>,
    /// Generated (32 bytes) when absent.
    #[schema(nullable = false, value_type = Option<Secret>)]
    secret: Option<String>,
    #[schema(nullable = false, value_type = Option<RetryCount>)]
    retry_count: Option<i64>,
    /// `null` or absent: the backoff, `retry_count` times.
    #[schema(value_type = Option<RetrySchedule>)]
    retry_schedule: Option<Value>,
    #[schema(nullable = false, value_type = Option<TimeoutSeconds>)]
    timeout_seconds: Option<i64>,
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// `null`: no limit.
    #[schema(value_type = Option<RateLimit>)]
    rate_limit_per_second: Option<i64>,
    /// Only events whose envelope it accepts become deliveries; `null` or absent: every
    /// subscribed event.
    #[schema(value_type = Option<PayloadFilter>)]
    filter: Option<Value>,
    /// `false` switches it off (`disabled`, reason `manual`): no new deliveries, pending
    /// ones held (default `true`).
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// How long deliveries may fail continuously before it is disabled.
    // The field's own schema takes `null`; a nullable wrapper would make `null` match both
    // branches of a `oneOf`, which JSON Schema then refuses.
    #[schema(nullable = false)]
    disable_after: Option<DisableAfterField>,
}

/// `PATCH /webhooks/{id}`: any subset of the writable fields, with the same rules as on
/// create.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_active": false, "description": null}))]
#[allow(dead_code)]
pub struct WebhookPatchBody {
    #[schema(nullable = false, value_type = Option<Name>)]
    name: Option<String>,
    /// `null` or blank clears it.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    #[schema(nullable = false, value_type = Option<WebhookUrl>)]
    url: Option<String>,
    #[schema(nullable = false, min_items = 1)]
    events: Option<Vec<Subscription>>,
    #[schema(nullable = false, value_type = Option<Secret>)]
    secret: Option<String>,
    /// Ends any `retry_schedule`.
    #[schema(nullable = false, value_type = Option<RetryCount>)]
    retry_count: Option<i64>,
    /// `null` goes back to the backoff, as many times as the schedule had entries (at most
    /// 10) unless `retry_count` is given too.
    #[schema(value_type = Option<RetrySchedule>)]
    retry_schedule: Option<Value>,
    #[schema(nullable = false, value_type = Option<TimeoutSeconds>)]
    timeout_seconds: Option<i64>,
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// `null`: no limit.
    #[schema(value_type = Option<RateLimit>)]
    rate_limit_per_second: Option<i64>,
    /// Only events whose envelope it accepts become deliveries; `null` or absent: every
    /// subscribed event.
    #[schema(value_type = Option<PayloadFilter>)]
    filter: Option<Value>,
    /// `true` enables it again (held deliveries resume, the failure streak is cleared);
    /// `false` disables it (reason `manual`).
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// How long deliveries may fail continuously before it is disabled.
    // The field's own schema takes `null`; a nullable wrapper would make `null` match both
    // branches of a `oneOf`, which JSON Schema then refuses.
    #[schema(nullable = false)]
    disable_after: Option<DisableAfterField>,
}

/// `POST /operational-webhooks`: as `POST /webhooks`, subscribing to operational event types.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "CRM sync",
    "url": "https://example.com/hooks/hookrelay",
    "events": ["webhook.disabled", "delivery.exhausted"],
    "retry_count": 3,
    "timeout_seconds": 30
}))]
#[allow(dead_code)]
pub struct OperationalWebhookBody {
    #[schema(value_type = Name)]
    name: String,
    /// `null` or blank: none.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    #[schema(value_type = WebhookUrl)]
    url: String,
    /// At least one operational event type, or `*`; duplicates are dropped.
    #[schema(min_items = 1)]
    events: Vec<OperationalSubscription>,
    /// Generated (32 bytes) when absent.
    #[schema(nullable = false, value_type = Option<Secret>)]
    secret: Option<String>,
    #[schema(nullable = false, value_type = Option<RetryCount>)]
    retry_count: Option<i64>,
    /// `null` or absent: the backoff, `retry_count` times.
    #[schema(value_type = Option<RetrySchedule>)]
    retry_schedule: Option<Value>,
    #[schema(nullable = false, value_type = Option<TimeoutSeconds>)]
    timeout_seconds: Option<i64>,
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// `null`: no limit.
    #[schema(value_type = Option<RateLimit>)]
    rate_limit_per_second: Option<i64>,
    /// Only events whose envelope it accepts become deliveries; `null` or absent: every
    /// subscribed event.
    #[schema(value_type = Option<PayloadFilter>)]
    filter: Option<Value>,
    /// `false` switches it off (`disabled`, reason `manual`): no new deliveries, pending
    /// ones held (default `true`).
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// How long deliveries may fail continuously before it is disabled.
    // The field's own schema takes `null`; a nullable wrapper would make `null` match both
    // branches of a `oneOf`, which JSON Schema then refuses.
    #[schema(nullable = false)]
    disable_after: Option<DisableAfterField>,
}

/// `PATCH /operational-webhooks/{id}`: as `PATCH /webhooks/{id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_active": false, "description": null}))]
#[allow(dead_code)]
pub struct OperationalWebhookPatchBody {
    #[schema(nullable = false, value_type = Option<Name>)]
    name: Option<String>,
    /// `null` or blank clears it.
    #[schema(value_type = Option<Description>)]
    description: Option<String>,
    #[schema(nullable = false, value_type = Option<WebhookUrl>)]
    url: Option<String>,
    #[schema(nullable = false, min_items = 1)]
    events: Option<Vec<OperationalSubscription>>,
    #[schema(nullable = false, value_type = Option<Secret>)]
    secret: Option<String>,
    /// Ends any `retry_schedule`.
    #[schema(nullable = false, value_type = Option<RetryCount>)]
    retry_count: Option<i64>,
    /// `null` goes back to the backoff, as many times as the schedule had entries (at most
    /// 10) unless `retry_count` is given too.
    #[schema(value_type = Option<RetrySchedule>)]
    retry_schedule: Option<Value>,
    #[schema(nullable = false, value_type = Option<TimeoutSeconds>)]
    timeout_seconds: Option<i64>,
    /// Extra headers sent with every delivery.
    #[schema(value_type = Option<CustomHeaders>)]
    headers: Option<Value>,
    /// `null`: no limit.
    #[schema(value_type = Option<RateLimit>)]
    rate_limit_per_second: Option<i64>,
    /// Only events whose envelope it accepts become deliveries; `null` or absent: every
    /// subscribed event.
    #[schema(value_type = Option<PayloadFilter>)]
    filter: Option<Value>,
    /// `true` enables it again (held deliveries resume, the failure streak is cleared);
    /// `false` disables it (reason `manual`).
    #[schema(nullable = false)]
    is_active: Option<bool>,
    /// How long deliveries may fail continuously before it is disabled.
    // The field's own schema takes `null`; a nullable wrapper would make `null` match both
    // branches of a `oneOf`, which JSON Schema then refuses.
    #[schema(nullable = false)]
    disable_after: Option<DisableAfterField>,
}

/// `disable_after`: a duration of 1 minute to 90 days, `"off"`, or `null` for the server's.
pub struct DisableAfterField;

impl PartialSchema for DisableAfterField {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .pattern(Some(
                r"^(off|([1-9][0-9]{0,4}|1[01][0-9]{4}|12[0-8][0-9]{3}|129[0-5][0-9]{2}|129600)m|([1-9][0-9]{0,2}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h|([1-9]|[1-8][0-9]|90)d)$",
            ))
            .description(Some(
                "How long deliveries may fail continuously (no success, and at least \
                 `--disable-min-attempts` failed attempts) before the webhook is disabled: \
                 minutes, hours or days such as `\"5d\"` (1 minute to 90 days), `\"off\"` \
                 (never; a 410 Gone still disables), or `null` for the server's default \
                 (`--disable-after`, 5 days unless configured).",
            ))
            .examples([json!("5d")])
            .into()
    }
}

impl ToSchema for DisableAfterField {}

/// `POST /webhooks/{id}/rotate-secret`; the body may be empty.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace_period": "24h"}))]
#[allow(dead_code)]
pub struct RotationBody {
    /// The new secret; generated when absent.
    #[schema(nullable = false, value_type = Option<Secret>)]
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
    #[schema(value_type = Option<IdempotencyKey>)]
    idempotency_key: Option<String>,
    /// The tenant the event belongs to: required with the admin key. A tenant key's events
    /// belong to its own tenant: it may name it here, and naming any other answers 404.
    #[schema(nullable = false, value_type = Option<TenantRef>)]
    tenant_id: Option<String>,
}

/// `POST /events/batch`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewEventBatchBody {
    #[schema(value_type = EventList)]
    events: Vec<NewEventBody>,
}

/// `events` of a batch: 1 to [`event::BATCH_MAX`] events.
struct EventList;

impl PartialSchema for EventList {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(RefOr::Ref(Ref::from_schema_name(NewEventBody::name())))
            .min_items(Some(1))
            .max_items(Some(event::BATCH_MAX))
            .into()
    }
}

impl ToSchema for EventList {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((NewEventBody::name().into_owned(), NewEventBody::schema()));
        <NewEventBody as ToSchema>::schemas(schemas);
    }
}

/// `POST /webhooks/{id}/recover`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-01-30T18:00:00Z"}))]
#[allow(dead_code)]
pub struct RecoverBody {
    /// Recover failed deliveries made at or after this time; at most the retention age ago
    /// (`--retention`, default 30 days), and not in the future.
    since: Timestamp,
    /// And before this time; default (and at most) now.
    #[schema(nullable = false)]
    until: Option<Timestamp>,
}

/// `POST /events/{id}/replay`; the body may be empty.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"webhook_ids": ["wh_01kb7r8c4k2m6n8p0q2r4s6t8v"]}))]
#[allow(dead_code)]
pub struct ReplayBody {
    /// Only these webhooks (each subscribed to the event's type); default: every webhook
    /// that subscribes to it now.
    #[schema(nullable = false, min_items = 1, max_items = 100, value_type = Option<Vec<WebhookIdField>>)]
    webhook_ids: Option<Vec<String>>,
}

/// A webhook id.
#[derive(ToSchema)]
#[schema(
    pattern = "^wh_[0-9a-z]{26}$",
    example = "wh_01kb7r8c4k2m6n8p0q2r4s6t8v"
)]
#[allow(dead_code)]
struct WebhookIdField(String);

/// `POST /event-types`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "invoice.paid",
    "description": "An invoice was paid in full.",
    "schema": {
        "type": "object",
        "required": ["invoice_id", "amount"],
        "properties": {
            "invoice_id": {"type": "string"},
            "amount": {"type": "integer", "minimum": 0}
        }
    },
    "sample": {"invoice_id": "inv_1042", "amount": 4990}
}))]
#[allow(dead_code)]
pub struct EventTypeBody {
    #[schema(value_type = EventTypeName)]
    name: String,
    #[schema(value_type = TypeDescription)]
    description: String,
    /// A JSON Schema (2020-12 unless it names another draft) that every event's `data` must
    /// satisfy; it may only refer within itself. `null` or absent: any object.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    /// An example `data`, which must satisfy `schema`; absent: `{}`.
    #[schema(nullable = false, value_type = Option<Object>)]
    sample: Option<Value>,
}

/// `PATCH /event-types/{name}`: any subset; the name never changes.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"deprecated": true}))]
#[allow(dead_code)]
pub struct EventTypePatchBody {
    #[schema(nullable = false, value_type = Option<TypeDescription>)]
    description: Option<String>,
    /// `null` removes the schema.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    #[schema(nullable = false, value_type = Option<Object>)]
    sample: Option<Value>,
    /// A deprecated type is still accepted and delivered, and flagged in the catalogue.
    #[schema(nullable = false)]
    deprecated: Option<bool>,
}
