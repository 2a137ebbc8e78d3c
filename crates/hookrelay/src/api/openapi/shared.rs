//! What every operation shares: the bearer scheme, the problem answers, the catalogue enums.

use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Schema};
use utoipa::{Modify, PartialSchema};

use super::PUBLIC;
use crate::api::problem::ApiError;
use crate::domain::catalog::{self, CATALOG, UnknownEventType};
use crate::domain::input::FieldError;
use crate::domain::webhook::InvalidUrl;

pub(super) struct Common;

/// A problem answer that several operations share: its `components/responses` name, the
/// error it shows, and when it happens.
pub(super) struct SharedProblem {
    pub(super) name: &'static str,
    error: fn() -> ApiError,
    description: &'static str,
}

pub(super) const PROBLEMS: &[SharedProblem] = &[
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
                FieldError::new("url", InvalidUrl::Scheme),
                FieldError::new("events[0]", UnknownEventType("message.nope".into())),
            ])
        },
        description: "Field rules; `errors` names every bad field at once, and a key given \
            twice in one object by its path (`data.items[2].id`). With the admin key on a \
            tenant route, a missing `X-Tenant-Id`.",
    },
    SharedProblem {
        name: "Unavailable",
        error: || ApiError::Unavailable("database".into()),
        description: "The database cannot be reached in time. Comes with `Retry-After: 1`.",
    },
    SharedProblem {
        name: "RateLimited",
        error: || ApiError::RateLimited {
            scope: "this API key",
            retry_after: std::time::Duration::from_secs(1),
        },
        description: "Too many requests for this tenant key or from this client address \
            (limits set by the operator); comes with `Retry-After` in seconds. Creating a \
            webhook past the tenant's quota is also a 429 (`quota-exceeded`), without \
            `Retry-After`: waiting does not help.",
    },
    SharedProblem {
        name: "RequestTimeout",
        error: || ApiError::RequestTimeout(std::time::Duration::from_secs(30)),
        description: "The request body did not arrive in time (a `Content-Length` longer than \
            the body sent).",
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
        "RateLimited" => {
            response = response.header("Retry-After", header("Whole seconds to wait."));
        }
        _ => {}
    }
    response.build()
}

impl Modify for Common {
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
        let names = |wildcard: bool| -> Vec<Value> {
            if wildcard {
                catalog::subscribable(CATALOG)
                    .into_iter()
                    .map(Value::from)
                    .collect()
            } else {
                CATALOG.iter().map(|t| json!(t.name)).collect()
            }
        };
        for (schema, wildcard) in [("EventType", false), ("Subscription", true)] {
            let described = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names(wildcard)))
                .description(Some(if wildcard {
                    "A catalogue name, `group.*` for every type of a group (`message.*`), or \
                     `*` for every event type (present and future)."
                } else {
                    "A name from the event catalogue (`GET /api/v1/webhooks/events`)."
                }))
                .build();
            components
                .schemas
                .insert(schema.to_owned(), Schema::Object(described).into());
        }
        let operational: Vec<Value> = catalog::subscribable(crate::domain::operational::CATALOG)
            .into_iter()
            .map(Value::from)
            .collect();
        let described = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(operational))
            .description(Some(
                "An operational event type (`GET /api/v1/operational-webhooks/events`), `group.*` \
                 (`webhook.*`), or `*`.",
            ))
            .build();
        components.schemas.insert(
            "OperationalSubscription".to_owned(),
            Schema::Object(described).into(),
        );
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
        .is_some_and(|tags| tags.iter().any(|t| ADMIN_TAGS.contains(&t.as_str())));
    let mut wanted = vec![
        ("401", "Unauthorized"),
        ("429", "RateLimited"),
        ("500", "Internal"),
        ("503", "Unavailable"),
    ];
    if operation.request_body.is_some() {
        wanted.extend([
            ("400", "BadRequest"),
            ("408", "RequestTimeout"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Validation"),
        ]);
    }
    if has(ParameterIn::Query) {
        wanted.extend([("400", "BadRequest"), ("422", "Validation")]);
    }
    if params.iter().any(|p| p.name == "cursor") {
        // A cursor of the right shape that this list did not issue: no such page.
        wanted.push(("404", "NotFound"));
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

/// The tags of the routes only the admin key may call.
const ADMIN_TAGS: [&str; 3] = ["tenants", "operational", "event-types"];

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
