//! Types that describe the API for its OpenAPI document: request bodies (handlers read bodies
//! field by field, so these exist for the document only), field schemas built from the domain's
//! limits, the problem answer, and the parameters many operations share. Handlers name them in
//! their `#[utoipa::path]`; `api::openapi` gathers the handlers into the document. Nothing here
//! imports a handler, so the two never form a cycle.
//!
//! Layout: `bodies` (request bodies), `fields` (field schemas built from the domain's limits),
//! `types` (the problem answer, domain types, shared parameters).

mod bodies;
mod fields;
mod types;

pub use bodies::{
    EventTypeBody, EventTypePatchBody, NewApiKeyBody, NewEventBatchBody, NewEventBody,
    NewTenantBody, NewWebhookBody, OperationalWebhookBody, OperationalWebhookPatchBody,
    RecoverBody, ReplayBody, RotationBody, TestBody, WebhookPatchBody,
};
pub use fields::{EventTypeName, filter_rules};
pub use types::{
    EventType, OperationalSubscription, PageQuery, Problem, Subscription, TenantHeader,
};
