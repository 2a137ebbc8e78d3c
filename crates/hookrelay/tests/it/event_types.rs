//! The event-type registry end to end: a type added at run time is listed, subscribable (by
//! name and by group), accepted and delivered; its schema refuses bad `data` naming the
//! path; a deprecated type still delivers; only the operator changes the registry; and the
//! registry outlives a restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

fn invoice_paid() -> Value {
    json!({
        "name": "invoice.paid",
        "description": "An invoice was paid in full.",
        "schema": {
            "type": "object",
            "required": ["invoice_id", "amount"],
            "properties": {
                "invoice_id": {"type": "string"},
                "amount": {"type": "integer", "minimum": 0},
                "customer": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}}
                }
            }
        },
        "sample": {"invoice_id": "inv_1042", "amount": 4990}
    })
}

async fn json_of(r: reqwest::Response, status: StatusCode) -> Value {
    let got = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

#[tokio::test]
async fn a_type_added_at_run_time_is_listed_accepted_checked_and_delivered() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/by-name", |_| Reply::status(200));
    rx.script("/by-group", |_| Reply::status(200));
    let t = app.tenant("Acme").await;

    // Unknown before it is added.
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(json!({"type": "invoice.paid", "data": {}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["type"]
    );

    let r = app
        .admin(Method::POST, "/api/v1/event-types", Some(invoice_paid()))
        .await;
    let created = json_of(r, StatusCode::CREATED).await;
    assert_eq!(created["name"], "invoice.paid");
    assert_eq!(created["group"], "invoice");
    assert_eq!(created["builtin"], false);
    assert_eq!(created["deprecated"], false);
    assert_eq!(created["schema"], invoice_paid()["schema"]);

    // Tenants see it in the catalogue, with its sample and schema.
    let catalogue = app.get(&t, "/api/v1/webhooks/events").await;
    let listed = catalogue["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "invoice.paid")
        .cloned()
        .expect("listed");
    assert_eq!(listed["sample"], invoice_paid()["sample"]);
    assert_eq!(listed["deprecated"], false);
    // And the served OpenAPI document names it among the event types.
    let doc: Value = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let types = &doc["components"]["schemas"]["EventType"]["enum"];
    assert!(
        types.as_array().unwrap().contains(&json!("invoice.paid")),
        "{types}"
    );
    let subs = &doc["components"]["schemas"]["Subscription"]["enum"];
    assert!(
        subs.as_array().unwrap().contains(&json!("invoice.*")),
        "{subs}"
    );

    let by_name = app
        .webhook(
            &t,
            json!({"name": "paid", "url": rx.url("/by-name"), "events": ["invoice.paid"]}),
        )
        .await;
    app.webhook(
        &t,
        json!({"name": "invoices", "url": rx.url("/by-group"), "events": ["invoice.*"]}),
    )
    .await;
    // A group nobody registered is still refused.
    let r = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&t.key),
            Some(json!({"name": "x", "url": rx.url("/x"), "events": ["refund.*"]})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["events[0]"]
    );

    // Data the schema refuses: 422 naming each path, nothing stored.
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(json!({"type": "invoice.paid",
                        "data": {"invoice_id": 7, "amount": -1, "customer": {"email": "nope"}}})),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(
        named,
        ["data.amount", "data.customer.email", "data.invoice_id"],
        "{p}"
    );
    // In a batch, under the event's index.
    let r = app
        .call(
            Method::POST,
            "/api/v1/events/batch",
            Some(&t.key),
            Some(json!({"events": [
                {"type": "invoice.paid", "data": {"invoice_id": "a", "amount": 1}},
                {"type": "invoice.paid", "data": {"amount": 1}}
            ]})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["events[1].data"]
    );

    let accepted = app
        .event(
            &t,
            json!({"type": "invoice.paid", "data": {"invoice_id": "inv_1", "amount": 100}}),
        )
        .await;
    assert_eq!(accepted["deliveries"], 2, "{accepted}");
    let hit = &rx.wait_for("/by-name", 1, WAIT).await[0];
    assert_eq!(hit.json()["type"], "invoice.paid");
    assert_eq!(hit.json()["data"]["invoice_id"], "inv_1");
    rx.wait_for("/by-group", 1, WAIT).await;
    // Only the two accepted events ever arrived.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.hits("/by-name").len(), 1);

    // A test send without a type sends the registered type's sample.
    let test = app
        .call(
            Method::POST,
            &format!("/api/v1/webhooks/{}/test", by_name["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    let test = json_of(test, StatusCode::OK).await;
    assert_eq!(test["event_type"], "invoice.paid", "{test}");
    let sent = rx.wait_for("/by-name", 2, WAIT).await;
    assert_eq!(sent[1].json()["data"], invoice_paid()["sample"]);
}

#[tokio::test]
async fn a_deprecated_type_is_flagged_and_still_delivers() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    rx.script("/in", |_| Reply::status(200));
    let t = app.tenant("Acme").await;
    let r = app
        .admin(
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "call.missed", "description": "A call was missed."})),
        )
        .await;
    let created = json_of(r, StatusCode::CREATED).await;
    assert_eq!(
        created["sample"],
        json!({}),
        "no sample given: an empty object"
    );
    assert_eq!(created["schema"], Value::Null);
    app.webhook(
        &t,
        json!({"name": "calls", "url": rx.url("/in"), "events": ["call.*"]}),
    )
    .await;

    let r = app
        .admin(
            Method::PATCH,
            "/api/v1/event-types/call.missed",
            Some(json!({"deprecated": true, "description": "Use call.ended instead."})),
        )
        .await;
    let patched = json_of(r, StatusCode::OK).await;
    assert_eq!(patched["deprecated"], true);
    assert!(patched["deprecated_at"].is_string(), "{patched}");
    assert_eq!(patched["description"], "Use call.ended instead.");

    let catalogue = app.get(&t, "/api/v1/webhooks/events").await;
    let listed = catalogue["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "call.missed")
        .cloned()
        .expect("still listed");
    assert_eq!(listed["deprecated"], true);

    let accepted = app
        .event(
            &t,
            json!({"type": "call.missed", "data": {"from": "+5511"}}),
        )
        .await;
    assert_eq!(accepted["deliveries"], 1);
    let hit = &rx.wait_for("/in", 1, WAIT).await[0];
    assert_eq!(hit.json()["type"], "call.missed");
    // A webhook may still subscribe to it by name: existing integrations keep working.
    app.webhook(
        &t,
        json!({"name": "missed", "url": rx.url("/in"), "events": ["call.missed"]}),
    )
    .await;
}

#[tokio::test]
async fn the_registry_is_seeded_checked_and_the_operators_alone() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;

    // The built-in catalogue is there on first start, in order.
    let r = app.admin(Method::GET, "/api/v1/event-types", None).await;
    let list = json_of(r, StatusCode::OK).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let builtin: Vec<&str> = hookrelay::domain::catalog::CATALOG
        .iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, builtin);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["builtin"] == true)
    );

    // Tenants can neither read the registry's admin view nor change it.
    for (method, path, body) in [
        (Method::GET, "/api/v1/event-types", None),
        (Method::GET, "/api/v1/event-types/message.new", None),
        (
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "tenant.made", "description": "no"})),
        ),
        (
            Method::PATCH,
            "/api/v1/event-types/message.new",
            Some(json!({"deprecated": true})),
        ),
    ] {
        let r = app.call(method, path, Some(&t.key), body).await;
        problem(r, StatusCode::FORBIDDEN).await;
    }
    let r = app
        .admin(Method::GET, "/api/v1/event-types/message.new", None)
        .await;
    assert_eq!(json_of(r, StatusCode::OK).await["deprecated"], false);

    // Every field is checked, each error named.
    let r = app
        .admin(
            Method::POST,
            "/api/v1/event-types",
            Some(
                json!({"name": "Invoice Paid", "description": " ", "schema": {"type": 5},
                        "sample": [], "extra": 1}),
            ),
        )
        .await;
    let mut named = fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await);
    named.sort();
    assert_eq!(named, ["description", "extra", "name", "sample", "schema"]);
    let r = app
        .admin(
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "a.b", "description": "x",
                        "schema": {"$ref": "http://127.0.0.1:9/schema.json"}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["schema"]
    );
    let r = app
        .admin(
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": "a.b", "description": "x",
                        "schema": {"type": "object", "required": ["id"]}, "sample": {}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["sample"]
    );
    // A name taken, a built-in one included: conflict.
    let add = |name: &'static str| {
        app.admin(
            Method::POST,
            "/api/v1/event-types",
            Some(json!({"name": name, "description": "x"})),
        )
    };
    json_of(add("a.c").await, StatusCode::CREATED).await;
    problem(add("a.c").await, StatusCode::CONFLICT).await;
    problem(add("message.new").await, StatusCode::CONFLICT).await;
    // A patch that would make the stored sample break the new schema names `schema`.
    let r = app
        .admin(
            Method::PATCH,
            "/api/v1/event-types/message.new",
            Some(json!({"schema": {"type": "object", "required": ["no_such_field"]}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["schema"]
    );
    for path in ["/api/v1/event-types/nope.nope", "/api/v1/event-types/%FF"] {
        let r = app.admin(Method::GET, path, None).await;
        problem(r, StatusCode::NOT_FOUND).await;
        let r = app
            .admin(Method::PATCH, path, Some(json!({"deprecated": true})))
            .await;
        problem(r, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn the_registry_outlives_a_restart_and_a_builtin_keeps_the_operators_changes() {
    let app = spawn_app!();
    let r = app
        .admin(Method::POST, "/api/v1/event-types", Some(invoice_paid()))
        .await;
    json_of(r, StatusCode::CREATED).await;
    let r = app
        .admin(
            Method::PATCH,
            "/api/v1/event-types/message.new",
            Some(json!({"description": "Inbound WhatsApp message.",
                        "schema": {"type": "object", "required": ["message_id"]}})),
        )
        .await;
    json_of(r, StatusCode::OK).await;

    let app = TestApp::spawn_in(app.stop().await).await;
    let t = app.tenant("Acme").await;
    let r = app
        .admin(Method::GET, "/api/v1/event-types/invoice.paid", None)
        .await;
    assert_eq!(
        json_of(r, StatusCode::OK).await["schema"],
        invoice_paid()["schema"]
    );
    // The seed did not overwrite the operator's change to a built-in type.
    let r = app
        .admin(Method::GET, "/api/v1/event-types/message.new", None)
        .await;
    let builtin = json_of(r, StatusCode::OK).await;
    assert_eq!(builtin["description"], "Inbound WhatsApp message.");
    assert_eq!(builtin["builtin"], true);
    // And its schema is enforced.
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(json!({"type": "message.new", "data": {"text": "hi"}})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["data"]
    );
    app.event(
        &t,
        json!({"type": "invoice.paid", "data": {"invoice_id": "i", "amount": 1}}),
    )
    .await;
}

#[tokio::test]
async fn the_schema_error_in_the_docs_is_what_the_server_answers() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let r = app
        .admin(Method::POST, "/api/v1/event-types", Some(invoice_paid()))
        .await;
    json_of(r, StatusCode::CREATED).await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&t.key),
            Some(json!({"type": "invoice.paid", "data": {
                "invoice_id": "inv_1", "amount": -1, "customer": {"email": "nope"}
            }})),
        )
        .await;
    let answer = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let documented = doc_json_blocks("docs/api.md", "event-type-example").remove(0);
    let sorted = |errors: &Value| {
        let mut errors = errors.as_array().unwrap().clone();
        errors.sort_by_key(|e| e["field"].as_str().unwrap().to_owned());
        errors
    };
    assert_eq!(
        sorted(&answer["errors"]),
        sorted(&documented["errors"]),
        "{answer}"
    );
    for key in ["type", "title", "status"] {
        assert_eq!(answer[key], documented[key]);
    }
}
