//! The OpenAPI document and the reference page: the document is OpenAPI 3.1, names every route
//! the router serves and nothing it does not, and its request examples are accepted as they
//! are; `/docs/api` renders it with the bundle the server itself serves.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::helpers::*;

/// The router's source: the routes are read from it, so a route added without documenting
/// it fails here.
const ROUTER_SOURCE: &str = include_str!("../../src/api/mod.rs");

/// `(METHOD, path)` of every route in `api::router`, as OpenAPI spells them.
fn served_routes() -> BTreeSet<(String, String)> {
    let nested_start = ROUTER_SOURCE
        .find("let v1 = Router::new()")
        .expect("the /api/v1 router");
    let nested_end = nested_start + ROUTER_SOURCE[nested_start..].find(';').expect("its end");
    let mut routes = BTreeSet::new();
    for (at, _) in ROUTER_SOURCE.match_indices(".route(") {
        let args = &ROUTER_SOURCE[at + ".route(".len()..];
        let (path_arg, rest) = args.split_once(',').expect("route path argument");
        let path_arg = path_arg.trim();
        let path = match path_arg.strip_prefix('"') {
            Some(literal) => literal.trim_end_matches('"').to_owned(),
            None => match path_arg {
                "openapi::DOCS_PATH" => hookrelay::api::openapi::DOCS_PATH.to_owned(),
                "openapi::BUNDLE_PATH" => hookrelay::api::openapi::BUNDLE_PATH.to_owned(),
                other => panic!("route path {other}: teach this test its value"),
            },
        };
        let path = if (nested_start..nested_end).contains(&at) {
            format!("/api/v1{path}")
        } else {
            path
        };
        // The method router: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("closing parenthesis");
        let handlers = &rest[..end];
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0
                    || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                        && handlers.as_bytes()[i - 1] != b'_'
            });
            if called {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

async fn document(app: &TestApp) -> Value {
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    r.json().await.unwrap()
}

#[tokio::test]
async fn document_is_openapi_3_1_and_lists_exactly_the_served_routes() {
    let app = spawn_app!();
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let served = served_routes();
    assert!(
        served.len() >= 25,
        "the source scan found too few routes: {served:?}"
    );
    assert!(served.contains(&("DELETE".into(), "/api/v1/tenants/{id}/keys/{key_id}".into())));
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "documented but not served: {not_served:?}"
    );

    // And the server agrees: every documented operation is routed (whatever it then answers
    // without a key), none falls to the 404/405 fallbacks.
    for (method, path) in &documented {
        let path = path
            .replace("{id}", "x")
            .replace("{key_id}", "y")
            .replace("{log_id}", "z");
        let r = app
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                None,
                None,
            )
            .await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("/problems/no-route") && !body.contains("/problems/method-not-allowed"),
            "{method} {path}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn every_api_operation_documents_its_problems_and_key() {
    let app = spawn_app!();
    let doc = document(&app).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
                assert_eq!(
                    op["security"],
                    serde_json::json!([]),
                    "{method} {path} is public"
                );
                continue;
            }
            assert!(
                op.get("security").is_none(),
                "{method} {path} takes the bearer key"
            );
            for status in ["401", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
            if path.contains('{') {
                assert!(responses.contains_key("404"), "{method} {path}: no 404");
            }
        }
    }
    // Each shared problem answer carries an example as the server renders it.
    let shared = doc["components"]["responses"].as_object().unwrap();
    assert!(shared.len() >= 9);
    for (name, response) in shared {
        let example = &response["content"]["application/problem+json"]["example"];
        assert!(
            example["type"]
                .as_str()
                .unwrap()
                .starts_with("https://hookrelay.dev/problems/"),
            "{name}: {example}"
        );
        assert!(
            example["status"].as_u64().unwrap() >= 400,
            "{name}: {example}"
        );
    }
}

/// The example of a documented request body, following `$ref` into the components.
fn body_example(doc: &Value, op: &Value) -> Option<Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let name = schema["$ref"].as_str()?.rsplit('/').next()?;
    let example = &doc["components"]["schemas"][name]["example"];
    (!example.is_null()).then(|| example.clone())
}

#[tokio::test]
async fn request_body_examples_are_accepted_as_documented() {
    let app = spawn_app!();
    let doc = document(&app).await;
    let t = app.tenant("Acme").await;
    let hook = app.webhook(&t, sample_webhook()).await;
    let hook_id = hook["id"].as_str().unwrap();
    let r = app
        .admin(
            Method::POST,
            "/api/v1/operational-webhooks",
            Some(json!({"name": "ops", "url": "https://example.com/ops", "events": ["*"]})),
        )
        .await;
    let ops: Value = r.json().await.unwrap();
    let ops_id = ops["id"].as_str().unwrap();
    let event_type = hook["events"][0].as_str().unwrap();
    let event = app.event(&t, json!({"type": event_type, "data": {}})).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(example) = body_example(&doc, op) else {
                continue;
            };
            let operational = path.starts_with("/api/v1/operational-webhooks");
            let registry = path.starts_with("/api/v1/event-types");
            let admin = path.starts_with("/api/v1/tenants") || operational || registry;
            let id = match (admin, operational) {
                (_, true) => ops_id,
                (true, false) => t.id.as_str(),
                _ => hook_id,
            };
            let mut example = example;
            let id = if path == "/api/v1/events/{id}/replay" {
                // The example names a webhook; replay an event to this tenant's.
                example["webhook_ids"] = json!([hook_id]);
                event_id.as_str()
            } else {
                id
            };
            // A built-in type: it exists whatever order the examples run in.
            let concrete = path.replace("{id}", id).replace("{name}", "message.new");
            let key = if admin { ADMIN_KEY } else { t.key.as_str() };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .call(method.clone(), &concrete, Some(key), Some(example.clone()))
                .await;
            let status = r.status().as_u16().to_string();
            let body = r.text().await.unwrap();
            assert!(
                status.starts_with('2') && op["responses"].get(&status).is_some(),
                "{method} {path} with its example {example}: {status} {body}"
            );
            tried += 1;
        }
    }
    assert!(tried >= 7, "only {tried} examples found");
}

#[tokio::test]
async fn reference_page_renders_the_document_with_the_served_bundle() {
    let app = spawn_app!();
    let r = app.call(Method::GET, "/docs/api", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"spec-url="/api/v1/openapi.json""#),
        "{html}"
    );
    assert!(
        html.contains(r#"src="/docs/api/redoc.standalone.js""#),
        "{html}"
    );
    assert!(
        !html.contains("cdn."),
        "the page must load nothing from a CDN: {html}"
    );

    let r = app
        .call(Method::GET, "/docs/api/redoc.standalone.js", None, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let bundle = r.bytes().await.unwrap();
    assert!(bundle.len() > 1_000_000, "{} bytes", bundle.len());
    assert!(String::from_utf8_lossy(&bundle[..400]).contains("Version: 3.0.1"));
}

#[tokio::test]
async fn no_route_problem_points_at_the_document_it_names() {
    let app = spawn_app!();
    let p = problem(
        app.call(Method::GET, "/api/v1/nope", None, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("/api/v1/openapi.json"),
        "{p}"
    );
    // docs/api.md's example: `curl -s …/api/v1/openapi.json | jq .info.title`.
    let doc = document(&app).await;
    assert_eq!(doc["info"]["title"], "hookrelay");
}
