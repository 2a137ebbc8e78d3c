//! One failing case per rule: status, content type and the field named.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;

fn with(field: &str, value: Value) -> Value {
    let mut body = sample_webhook();
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = sample_webhook();
    body.as_object_mut().unwrap().remove(field);
    body
}

fn create_cases() -> Vec<(&'static str, Value, &'static str)> {
    let long_url = format!("https://example.com/{}", "a".repeat(2048));
    vec![
        ("name missing", without("name"), "name"),
        ("name empty", with("name", json!("")), "name"),
        ("name blank", with("name", json!("   ")), "name"),
        (
            "name too long",
            with("name", json!("n".repeat(101))),
            "name",
        ),
        ("name not a string", with("name", json!(7)), "name"),
        (
            "name only zero-width",
            with("name", json!("\u{200B}\u{2060}\u{FEFF}")),
            "name",
        ),
        (
            "name only variation selectors",
            with("name", json!("\u{FE0F}\u{E0100}")),
            "name",
        ),
        (
            "name with a right-to-left override",
            with("name", json!("CRM\u{202E}cnys")),
            "name",
        ),
        (
            "name with an isolate",
            with("name", json!("\u{2067}CRM\u{2069}")),
            "name",
        ),
        (
            "description with a bidirectional mark",
            with("description", json!("sync\u{200F}")),
            "description",
        ),
        ("url missing", without("url"), "url"),
        ("url relative", with("url", json!("/hooks")), "url"),
        (
            "url no scheme",
            with("url", json!("example.com/hook")),
            "url",
        ),
        ("url ftp", with("url", json!("ftp://example.com/x")), "url"),
        ("url file", with("url", json!("file:///etc/passwd")), "url"),
        (
            "url credentials",
            with("url", json!("https://user:pw@example.com/")),
            "url",
        ),
        ("url too long", with("url", json!(long_url)), "url"),
        (
            "url not a string",
            with("url", json!(["https://e.com"])),
            "url",
        ),
        ("events missing", without("events"), "events"),
        ("events empty", with("events", json!([])), "events"),
        (
            "events not an array",
            with("events", json!("message.sent")),
            "events",
        ),
        (
            "events unknown type",
            with("events", json!(["message.sent", "message.deleted"])),
            "events[1]",
        ),
        ("events non-string", with("events", json!([1])), "events[0]"),
        (
            "secret without prefix",
            with("secret", json!("abcdefabcdefabcdefabcdefabcdef")),
            "secret",
        ),
        (
            "secret too short",
            with("secret", json!("whsec_c2hvcnQ=")),
            "secret",
        ),
        (
            "secret not base64",
            with("secret", json!("whsec_***not-base64***")),
            "secret",
        ),
        (
            "retry_count too big",
            with("retry_count", json!(11)),
            "retry_count",
        ),
        (
            "retry_count negative",
            with("retry_count", json!(-1)),
            "retry_count",
        ),
        (
            "retry_count fractional",
            with("retry_count", json!(2.5)),
            "retry_count",
        ),
        (
            "timeout_seconds zero",
            with("timeout_seconds", json!(0)),
            "timeout_seconds",
        ),
        (
            "timeout_seconds too big",
            with("timeout_seconds", json!(61)),
            "timeout_seconds",
        ),
        (
            "timeout_seconds string",
            with("timeout_seconds", json!("30")),
            "timeout_seconds",
        ),
        (
            "is_active not bool",
            with("is_active", json!("yes")),
            "is_active",
        ),
        (
            "description too long",
            with("description", json!("d".repeat(501))),
            "description",
        ),
        ("unknown field", with("callback", json!("x")), "callback"),
    ]
}

#[tokio::test]
async fn each_create_rule_answers_422_naming_the_field() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    for (case, body, field) in create_cases() {
        let r = app
            .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [field], "case {case}: {p}");
    }
    // Nothing was created by any of them.
    let list: Value = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn patch_is_validated_the_same_way_and_refuses_unknown_fields() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let created = app.webhook(&t, sample_webhook()).await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    for (case, body, field) in create_cases() {
        if case.ends_with("missing") {
            continue; // PATCH takes any subset
        }
        let value = body
            .get(field.split('[').next().unwrap())
            .cloned()
            .unwrap_or(Value::Null);
        let patch = json!({ field.split('[').next().unwrap(): value });
        let r = app
            .call(Method::PATCH, &path, Some(&t.key), Some(patch))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), [field], "case {case}: {p}");
    }
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&t.key),
            Some(json!({"total_deliveries": 99})),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["total_deliveries"]
    );
    // And the webhook is untouched.
    let got: Value = app
        .call(Method::GET, &path, Some(&t.key), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["updated_at"], created["updated_at"]);
    assert_eq!(got["total_deliveries"], 0);
}

#[tokio::test]
async fn every_bad_field_is_listed_at_once() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let body =
        json!({"name": "", "url": "nope", "events": [], "retry_count": 99, "timeout_seconds": 0});
    let r = app
        .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut got = fields(&p);
    got.sort();
    assert_eq!(
        got,
        ["events", "name", "retry_count", "timeout_seconds", "url"]
    );
    assert_eq!(p["detail"], "5 fields are invalid");
}

#[tokio::test]
async fn tenant_and_key_inputs_are_validated() {
    let app = spawn_app!();
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "\u{200B}\u{200D}"}), "name"),
        (json!({"name": "Acme\u{202E}"}), "name"),
        (json!({"name": "ok", "plan": "pro"}), "plan"),
    ] {
        let r = app.admin(Method::POST, "/api/v1/tenants", Some(body)).await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
    let t = app.tenant("Acme").await;
    let path = format!("/api/v1/tenants/{}/keys", t.id);
    for (body, field) in [
        (json!({"expires_at": "tomorrow"}), "expires_at"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"name": 5}), "name"),
        (json!({"name": "\u{3164}"}), "name"),
        (json!({"name": "prod\u{061C}"}), "name"),
        (json!({"scopes": []}), "scopes"),
    ] {
        let r = app.admin(Method::POST, &path, Some(body)).await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field]
        );
    }
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=1e9", "limit"),
        ("limit=abc", "limit"),
        ("cursor=!!!", "cursor"),
        ("is_active=maybe", "is_active"),
    ] {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/webhooks?{query}"),
                Some(&t.key),
                None,
            )
            .await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            [field],
            "{query}"
        );
    }
    let r = app
        .call(
            Method::GET,
            "/api/v1/webhooks?limit=200",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// The problem example in docs/api.md (the first JSON block under Errors) is a real answer,
/// word for word.
#[tokio::test]
async fn the_documented_problem_example_is_what_the_api_answers() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let errors = docs.find("## Errors").expect("an Errors section");
    let start =
        errors + docs[errors..].find("```json\n").expect("a JSON example") + "```json\n".len();
    let end = docs[start..].find("```").unwrap() + start;
    let documented: Value = serde_json::from_str(&docs[start..end]).unwrap();
    let body = json!({"name": "bad", "url": "ftp://example.com", "events": ["message.nope"]});
    let r = app
        .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
        .await;
    assert_eq!(
        problem(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        documented
    );
}
