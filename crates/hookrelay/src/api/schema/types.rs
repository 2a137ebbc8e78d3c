//! Schemas of the problem answer, of the domain types the API shows as they are, and of the
//! parameters many operations share.

use serde_json::json;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::delivery::DeliveryState;
use crate::domain::health::DisabledReason;
use crate::domain::input::FieldError;
use crate::domain::recovery::{DeliveryStatus, RecoveryState};
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::WebhookStatus;

/// An RFC 9457 problem. Match on `type`; `detail` is for people.
#[derive(ToSchema)]
#[schema(examples(json!({
    "type": "https://hookrelay.dev/problems/not-found",
    "title": "Not found",
    "status": 404,
    "detail": "webhook not found"
})))]
#[allow(dead_code)]
pub struct Problem {
    /// A stable URI naming the kind of problem: `https://hookrelay.dev/problems/` followed by
    /// `bad-request`, `unauthorized`, `forbidden`, `not-found`, `no-route`,
    /// `method-not-allowed`, `conflict`, `payload-too-large`, `request-timeout`,
    /// `unsupported-media-type`, `headers-too-large`, `uri-too-long`, `validation`,
    /// `rate-limited`, `quota-exceeded`, `unavailable`, `too-many-connections` or `internal`.
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

/// `active` receives deliveries; `failing` receives them but its last deliveries all
/// failed; `disabled` receives nothing (see `disabled_reason`), its pending deliveries held
/// until it is enabled again.
#[derive(ToSchema)]
#[schema(as = WebhookStatus)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum WebhookStatusDoc {
    Active,
    Failing,
    Disabled,
}

/// Why a webhook is disabled: `manual` (switched off by its tenant or the operator), `gone`
/// (its receiver answered 410 Gone), `failing` (deliveries failed continuously for its
/// `disable_after`).
#[derive(ToSchema)]
#[schema(as = DisabledReason)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum DisabledReasonDoc {
    Manual,
    Gone,
    Failing,
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

/// Where one delivery stands as a webhook's deliveries show it: `held` is a pending delivery
/// of a disabled webhook, kept (never dropped) until the webhook is enabled again.
#[derive(ToSchema)]
#[schema(as = DeliveryStatus)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum DeliveryStatusDoc {
    Pending,
    Held,
    Succeeded,
    Failed,
    Cancelled,
}

/// `running` (re-queueing at its pace), `completed` (every failed delivery of the window
/// re-queued) or `cancelled` (stopped; what it re-queued stays queued).
#[derive(ToSchema)]
#[schema(as = RecoveryState)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum RecoveryStateDoc {
    Running,
    Completed,
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
schema_of!(DisabledReason => DisabledReasonDoc);
schema_of!(DeliveryState => DeliveryStateDoc);
schema_of!(DeliveryStatus => DeliveryStatusDoc);
schema_of!(RecoveryState => RecoveryStateDoc);

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
pub struct EventType(String);

/// What a webhook subscribes to: a catalogue name, or `*` for every event type.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Subscription(String);

/// What an operational webhook subscribes to: an operational event type, or `*`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OperationalSubscription(String);

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
    /// The `next_cursor` of the previous page of this same list, as it was returned (opaque;
    /// a cursor from another list is refused). Empty: the first page.
    #[param(pattern = "^[A-Za-z0-9_-]*$", max_length = 512)]
    cursor: Option<String>,
}
