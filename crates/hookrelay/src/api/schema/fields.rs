//! Schemas of the fields many bodies share, built from the domain's own limits and patterns, so
//! the document cannot drift from what the server enforces (`tests` below walks the document
//! and checks every use).

use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{event, filter, id, input, registry, retry, secret, webhook};

/// Declares a field schema type: `name => builder expression`.
macro_rules! field_schemas {
    ($($(#[$doc:meta])* $name:ident => $schema:expr;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

// Examples stay on the bodies (`bodies.rs`), whole and valid together: an example on a shared
// field would be combined by clients and testers with placeholder values for the body's other
// fields (schemathesis sent a key that expired in 2000).
field_schemas! {
    /// The name of a registered event type.
    EventTypeName => string()
        .min_length(Some(3))
        .max_length(Some(registry::NAME_MAX))
        .pattern(Some(registry::NAME_PATTERN))
        .description(Some(
            "A lowercase group and action, e.g. `invoice.paid`: letters, digits and `_`, each \
             part starting with a letter.",
        ));

    /// What an event type is for: required, something a reader can see.
    TypeDescription => string()
        .min_length(Some(1))
        .max_length(Some(registry::DESCRIPTION_MAX))
        .pattern(Some(input::NAME_PATTERN))
        .description(Some(format!(
            "1–{} characters, no control or bidirectional control characters, at least one \
             visible; surrounding spaces are trimmed.",
            registry::DESCRIPTION_MAX
        )));

    /// The name of a tenant, a key or a webhook.
    Name => string()
        .min_length(Some(1))
        .max_length(Some(input::NAME_MAX))
        .pattern(Some(input::NAME_PATTERN))
        .description(Some(format!(
            "1–{} characters, no control or bidirectional control characters, at least one \
             visible; surrounding spaces are trimmed.",
            input::NAME_MAX
        )));

    /// A webhook's description.
    Description => string()
        .max_length(Some(webhook::DESCRIPTION_MAX))
        .pattern(Some(input::FREE_TEXT_PATTERN))
        .description(Some(format!(
            "Up to {} characters, no control or bidirectional control characters; blank \
             (nothing visible) is none.",
            webhook::DESCRIPTION_MAX
        )));

    /// A signing secret chosen by the client.
    Secret => string()
        .pattern(Some(secret::PATTERN))
        .description(Some(format!(
            "`{}` + standard base64 of {}–{} bytes.",
            secret::PREFIX,
            secret::MIN_BYTES,
            secret::MAX_BYTES
        )))
        .examples([json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);

    /// Retries after the first attempt.
    RetryCount => integer(0, webhook::RETRY_COUNT_MAX).description(Some(format!(
        "Retries after the first attempt, 0–{} (default {}).",
        webhook::RETRY_COUNT_MAX,
        webhook::DEFAULT_RETRY_COUNT
    )));

    /// A webhook's own retry delays, or the `standard` preset.
    RetrySchedule => utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(
                    string()
                        .pattern(Some(retry::DELAY_PATTERN))
                        .description(Some("A delay: `\"30s\"`, `\"5m\"`, `\"2h\"`, `\"1h 30m\"`.")),
                )
                .min_items(Some(1))
                .max_items(Some(retry::RETRY_SCHEDULE_MAX)),
        )
        .item(string().enum_values(Some([retry::STANDARD_PRESET])))
        .description(Some(format!(
            "The delay before each retry, in order: 1–{} durations, each more than zero and at \
             most the server's longest retry delay (`--retry-max-delay`, default 24h); as many \
             retries as entries, each jittered like the backoff. Or `\"{}\"`: the Standard \
             Webhooks schedule (5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h), accepted unless the \
             longest retry delay was set below 24h. Exclusive with `retry_count` (unless \
             this is `null`).",
            retry::RETRY_SCHEDULE_MAX,
            retry::STANDARD_PRESET
        )));

    /// A webhook's payload filter; the rules are added to the rendered document by
    /// [`filter_rules`], since utoipa cannot say `propertyNames` or a recursive `$ref`.
    PayloadFilter => ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "A condition on the event's envelope (`type`, `tenant_id`, `created_at`, \
             `data.…`): only events it accepts become deliveries; the others are counted as \
             `filtered_events` in the statistics. Keys are paths (names separated by dots; a \
             number indexes an array) or `$and`/`$or` (lists of filters) and `$not` (a \
             filter); all must hold. A path's condition is a value to equal, or an object of \
             operators: `$eq $neq $in $nin $gt $gte $lt $lte $exists $not`. A missing path \
             equals nothing (`$neq` and `$nin` hold for it); comparisons take numbers or \
             strings, and a value of another type does not match. Besides the rules stated \
             here: at most {} bytes as JSON, {} conditions (each path and each operator), \
             and `$and`/`$or`/`$not` nested at most {} deep.",
            filter::MAX_BYTES,
            filter::MAX_CONDITIONS,
            filter::MAX_DEPTH
        )));

    /// Seconds an attempt may take.
    TimeoutSeconds => integer(webhook::TIMEOUT_MIN, webhook::TIMEOUT_MAX).description(Some(
        format!(
            "Seconds an attempt may take, {}–{} (default {}).",
            webhook::TIMEOUT_MIN,
            webhook::TIMEOUT_MAX,
            webhook::DEFAULT_TIMEOUT_SECONDS
        )
    ));

    /// A webhook's delivery rate limit.
    RateLimit => integer(1, webhook::RATE_LIMIT_MAX).description(Some(format!(
        "Deliveries per second at most, on each node (1–{}). Deliveries over it wait; none is \
         dropped.",
        webhook::RATE_LIMIT_MAX
    )));

    /// An event's idempotency key.
    IdempotencyKey => string()
        .min_length(Some(1))
        .max_length(Some(event::IDEMPOTENCY_KEY_MAX))
        .pattern(Some(event::IDEMPOTENCY_KEY_PATTERN))
        .description(Some(format!(
            "A repeat within 24 hours answers the first event (200) instead of creating one; \
             1–{} characters, no control characters.",
            event::IDEMPOTENCY_KEY_MAX
        )));

    /// A tenant's id.
    TenantRef => string()
        .pattern(Some(format!("^{}_[0-9a-z]{{26}}$", id::TENANT)));
}

/// The rules of [`PayloadFilter`], and the two schemas it refers to, as JSON Schema 2020-12:
/// (component name, keywords to add to it).
pub fn filter_rules() -> [(&'static str, serde_json::Value); 3] {
    let filter = json!({"$ref": "#/components/schemas/PayloadFilter"});
    let operators = json!({"$ref": "#/components/schemas/FilterOperators"});
    let filters = json!({
        "type": "array",
        "minItems": 1,
        "maxItems": filter::MAX_LIST,
        "items": filter
    });
    let values = json!({"type": "array", "minItems": 1, "maxItems": filter::MAX_LIST});
    let comparable = json!({"type": ["number", "string"]});
    let not_object = json!({"not": {"type": "object"}});
    [
        (
            "PayloadFilter",
            json!({
                "minProperties": 1,
                "maxProperties": filter::MAX_CONDITIONS,
                "propertyNames": {"anyOf": [
                    {"enum": filter::LOGICAL_OPERATORS},
                    {"maxLength": filter::MAX_PATH_CHARS, "pattern": filter::PATH_PATTERN}
                ]},
                "properties": {"$and": filters, "$or": filters, "$not": filter},
                "additionalProperties": {"$ref": "#/components/schemas/FilterCondition"}
            }),
        ),
        (
            "FilterCondition",
            json!({
                "description": "A value to equal (an object without `$` keys is one too), or \
                    an object of operators.",
                "anyOf": [
                    not_object,
                    {"type": "object", "propertyNames": {"not": {"pattern": "^\\$"}}},
                    operators
                ]
            }),
        ),
        (
            "FilterOperators",
            json!({
                "description": "Operators on one path, all of which must hold.",
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"enum": filter::FIELD_OPERATORS},
                "properties": {
                    "$eq": {}, "$neq": {}, "$in": values, "$nin": values,
                    "$gt": comparable, "$gte": comparable, "$lt": comparable, "$lte": comparable,
                    "$exists": {"type": "boolean"},
                    "$not": {"anyOf": [not_object, operators]}
                }
            }),
        ),
    ]
}
